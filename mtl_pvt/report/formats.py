"""The report written out: Markdown, CSV, JSON and the figures.

:func:`format_markdown` gives the runs and metrics compared, the table of
:func:`~.table.build_report` and every report section (:mod:`.section`:
the task affinity, :mod:`.affinity`); :func:`write_report` writes every
file.
"""
import csv
import json
import os
import os.path as osp
from typing import List, Optional

from .markdown import SOURCE_COLUMNS, markdown_table, source_cells
from .plots import plot_delta_m, plot_losses, plot_metrics
from .section import report_sections


def _number(value: Optional[float], fmt: str, scale: float = 1.) -> str:
    return '-' if value is None else format(value / scale, fmt)


def _duration(seconds: Optional[float]) -> str:
    """``'45 s'``, ``'12 min 05 s'`` or ``'3 h 20 min'``."""
    if seconds is None:
        return '-'
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f'{minutes} min {seconds:02d} s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours} h {minutes:02d} min'


def _metric_cell(row: dict, task: str) -> str:
    value = format(row['metrics'][task], '.4g')
    if row['type'] == 'stl':
        return value
    return f'{value} ({row["changes"][task]:+.2f}%)'


def _columns(report: dict) -> List[str]:
    arrows = {True: '↑', False: '↓'}
    metrics = [
        f'{task} {m["metric"]} {arrows[m["higher_is_better"]]}'
        for task, m in report['main_metrics'].items()
    ]
    flops = [f'GFLOPs {task}' for task in report['tasks']]
    return [
        'Run', *metrics, 'Δm (%)', 'Params (M)', 'Shared (M)', *flops,
        'Train step (s)', 'Train time', 'Inference (s/iter)'
    ]


def _cells(report: dict, row: dict) -> List[str]:
    tasks = report['tasks']
    metrics = [_metric_cell(row, t) for t in tasks]
    flops = [_number(row['flops'][t], '.3f', 1e9) for t in tasks]
    params = [
        _number(row[key], '.3f', 1e6)
        for key in ('params_total', 'params_shared')
    ]
    times = [
        _number(row['step_time'], '.3f'),
        _duration(row['train_time']),
        _number(row['test_time'], '.3f')
    ]
    return [
        row['name'], *metrics, f'{row["delta_m"]:+.2f}', *params, *flops,
        *times
    ]


_NOTES = (
    '- Metrics: in brackets the relative change against the STL run, '
    'positive = better. Δm: the mean of these changes (Maninis et al. '
    '2019), recomputed from the metrics above.',
    '- Params: the whole model; STL: the single-task models summed. Shared: '
    'parameters of backbone stages that several tasks run.',
    '- Train step: mean seconds per training iteration (`time` of '
    '`<timestamp>/vis_data/scalars.json`: IterTimerHook, data loading '
    'included); train time: all training iterations, validation and '
    'checkpoints excluded. STL: the single-task runs summed (one step of '
    'each).',
    '- Inference: `time` of the test results, mean seconds per test '
    'iteration (one batch, data loading included) over the last '
    '`len(test_dataloader)` iterations; MTL: over the last batches of its '
    'tasks run in turn, as many as its first task has. STL: the '
    'single-task runs summed.',
)


def _flops_note(report: dict) -> str:
    if not report['with_flops']:
        return '- GFLOPs: not counted.'
    shapes = report['runs'][0]['input_shapes']
    sizes = ', '.join(f'{t} {s[0]}x{s[1]}' for t, s in shapes.items())
    return (f'- GFLOPs: one forward of the task path on a 1x3xHxW input '
            f'({sizes}), MMEngine FlopAnalyzer, 1 multiply-add = 1 FLOP.')


def format_markdown(report: dict) -> str:
    """The report as Markdown: which runs and metrics, the table, then
    every report section (:mod:`.section`; the task affinity of the runs
    that measured it).

    Args:
        report (dict): The output of :func:`~.table.build_report`.

    Returns:
        str: The Markdown text.
    """
    stl, *mtl = report['runs']
    tasks = [[
        t, f'`{m["metric"]}`', 'higher' if m['higher_is_better'] else 'lower',
        *source_cells(stl['runs'][t])
    ] for t, m in report['main_metrics'].items()]
    runs = [[r['name'], *source_cells(r)] for r in mtl]
    rows = [_cells(report, r) for r in report['runs']]
    notes = [*_NOTES[:2], _flops_note(report), *_NOTES[2:]]
    sections = [
        '# Multi-task study report',
        'Main metric of each task and its single-task (STL) run; the test '
        'results are the latest `<timestamp>/<timestamp>.json` that '
        'tools/test.py wrote into the work dir, for the checkpoint in its '
        '`<timestamp>/vis_data/config.py` (`load_from`):',
        markdown_table(['Task', 'Main metric', 'Better', *SOURCE_COLUMNS],
                       tasks),
        'Multi-task (MTL) runs:',
        markdown_table(['Run', *SOURCE_COLUMNS], runs),
        markdown_table(_columns(report), rows, numbers=True),
        '\n'.join(notes),
    ]
    for section in report_sections():
        text = section.markdown(report)
        if text:
            sections.append(text)
    return '\n\n'.join(sections) + '\n'


def csv_rows(report: dict) -> List[dict]:
    """One flat dict per run, for ``report.csv``."""
    rows = []
    for row in report['runs']:
        flat = dict(run=row['name'], type=row['type'])
        for task, main in report['main_metrics'].items():
            flat[f'{task}/{main["metric"]}'] = row['metrics'][task]
            flat[f'{task}/change_pct'] = row['changes'][task]
        flat['delta_m_pct'] = row['delta_m']
        flat['params_total'] = row['params_total']
        flat['params_shared'] = row['params_shared']
        for task in report['tasks']:
            flat[f'{task}/params'] = row['params'][task]
            flat[f'{task}/flops'] = row['flops'][task]
        for key in ('step_time', 'train_time', 'test_time'):
            flat[f'{key}_s'] = row[key]
        rows.append(flat)
    return rows


def _write_csv(rows: List[dict], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_report(report: dict, out_dir: str, loss_x: str = 'samples') -> \
        List[str]:
    """Write ``report.md``, ``report.csv``, ``report.json`` and the plots
    of the table and of every report section (``affinity_<run>.png`` and
    ``affinity_curves_<run>.png`` for the runs with affinity
    measurements).

    Args:
        report (dict): The output of :func:`~.table.build_report`.
        out_dir (str): The output folder (created if needed).
        loss_x (str): x axis of the loss curves, ``'samples'`` (samples
            seen, when every run logs them) or ``'step'``. Defaults to
            ``'samples'``.

    Returns:
        list[str]: The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        name: osp.join(out_dir, name)
        for name in ('report.md', 'report.csv', 'report.json', 'metrics.png',
                     'delta_m_vs_params.png')
    }
    with open(paths['report.md'], 'w') as f:
        f.write(format_markdown(report))
    _write_csv(csv_rows(report), paths['report.csv'])
    with open(paths['report.json'], 'w') as f:
        json.dump(report, f, indent=2)
    plot_metrics(report, paths['metrics.png'])
    plot_delta_m(report, paths['delta_m_vs_params.png'])
    for task in report['tasks']:
        paths[task] = osp.join(out_dir, f'loss_{task}.png')
        plot_losses(report, task, paths[task], loss_x)
    written = list(paths.values())
    for section in report_sections():
        written += section.plots(report, out_dir)
    return written
