"""The task affinity part of the study report.

Read from each MTL run's work dir, besides what :mod:`.runs` reads:

- ``<work_dir>/<timestamp>/affinity.json`` of ``TaskAffinityHook`` (all
  sessions merged by :func:`~mtl_pvt.analysis.affinity.load_affinity`):
  the lookahead affinity ``Z(i -> j) = 1 - L_j(after) / L_j(before)``
  after one SGD step of a shared stage copy (or of the whole shared
  backbone, ``'backbone'``) along task ``i``'s gradient, and the cosine of
  the task gradients per copy, at the weights of the measured steps;
- ``<work_dir>/suggested_branching.json``, which
  ``tools/analysis_tools/suggest_branching.py CONFIG WORK_DIR --json
  WORK_DIR/suggested_branching.json`` writes: the suggested tree;
- the ``mtl.grad_cos.<a>-<b>.<copy>`` scalars that ``MultiTaskOptimWrapper``
  logs into the training log every ``stats_interval`` updates: the cosine
  of the task gradients of the training steps themselves (of the batch
  trained on, before per-task clipping and aggregation), unlike the
  hook's, which are those of its own lookahead.

For each run with data, the report gets a "Task affinity" section (tables
of the means and standard errors, the suggested tree) and, where the hook
measured, two plots: ``affinity_<run>.png`` (heatmaps per copy) and
``affinity_curves_<run>.png`` (values over training).
"""
import json
import math
import os.path as osp
import re
import warnings
from typing import Dict, List, Mapping, Optional, Sequence

from mtl_pvt.registry import REPORT_SECTIONS
from mtl_pvt.utils.work_dirs import sessions
from .markdown import (compact, json_safe, markdown_table, mean_sem,
                       ordered_pairs, pair_keys, sci)
from .plots import heatmap, new_figure
from .section import ReportSection

SUGGESTION_FILE = 'suggested_branching.json'
TRAIN_COS_PREFIX = 'mtl.grad_cos.'
BACKBONE = 'backbone'  # mtl_pvt.analysis.affinity.BACKBONE
_SUGGESTION_KEYS = ('stage_groups', 'score', 'extra_params', 'branches',
                    'search', 'measured', 'backbone_params', 'total_params',
                    'config', 'z', 'num_records')
_MAX_STEPS_SHOWN = 8


# --------------------------------------------------------------- reading --
def copy_order(names) -> List[str]:
    """Copy names by stage (``'stage0'``, ``'stage2.det_seg'``...), then
    ``'backbone'``."""
    from mtl_pvt.analysis.affinity import copy_stage
    copies = sorted((n for n in names if n != BACKBONE),
                    key=lambda n: (copy_stage(n), n))
    return copies + [BACKBONE] * (BACKBONE in names)


def load_suggestion(work_dir: str) -> Optional[dict]:
    """``<work_dir>/suggested_branching.json`` (its tree, score, costs and
    the config written), None without one; ``file`` is its path."""
    path = osp.join(work_dir, SUGGESTION_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or 'stage_groups' not in data:
        warnings.warn(f'{path} holds no stage_groups (not the --json output '
                      'of tools/analysis_tools/suggest_branching.py): no '
                      'suggested tree in the report')
        return None
    return json_safe(
        dict({k: data[k]
              for k in _SUGGESTION_KEYS if k in data}, file=path))


def train_grad_cos(records: Sequence[dict]) -> Optional[dict]:
    """Run means of the training gradient cosines that
    ``MultiTaskOptimWrapper`` logged (``mtl.grad_cos.<a>-<b>.<copy>``).

    ``LogProcessor`` writes such a scalar's latest value into every log
    line until the next one, so a repeated value is counted once.

    Args:
        records (Sequence[dict]): Training log lines, as from
            :func:`~mtl_pvt.report.runs.read_train_log`.

    Returns:
        dict | None: ``grad_cos`` (copy -> ``{'a-b': mean}``),
        ``num_values`` (copy -> ``{'a-b': count}``) and ``steps`` (the
        first and the last step logging one); None when the log has none.
    """
    series: Dict[str, Dict[str, List[float]]] = {}
    steps = []
    for record in records:
        found = False
        for key, value in record.items():
            if not key.startswith(TRAIN_COS_PREFIX):
                continue
            pair, _, copy = key[len(TRAIN_COS_PREFIX):].partition('.')
            if not copy or not isinstance(value, (int, float)):
                continue
            values = series.setdefault(copy, {}).setdefault(pair, [])
            if not values or values[-1] != value:
                values.append(float(value))
            found = True
        if found:
            steps.append(record['step'])
    if not series:
        return None
    order = copy_order(series)
    return json_safe(
        dict(
            grad_cos={
                c: {
                    p: sum(v) / len(v)
                    for p, v in series[c].items()
                }
                for c in order
            },
            num_values={
                c: {
                    p: len(v)
                    for p, v in series[c].items()
                }
                for c in order
            },
            steps=[steps[0], steps[-1]]))


def load_affinity_summary(work_dir: str) -> Optional[dict]:
    """The affinity that ``TaskAffinityHook`` measured in a run, averaged.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        dict | None: None when the work dir holds no measurement; else
        ``tasks``, ``stage_groups`` (of the measured model), ``interval``,
        ``files`` (the ``affinity.json`` read), ``copies`` (the copy names,
        ``'backbone'`` last), the run means and standard errors of
        :func:`~mtl_pvt.analysis.affinity.mean_affinity` (``affinity``,
        ``affinity_sem``, ``grad_cos``, ``grad_cos_sem``, ``grad_norm``,
        ``grad_norm_sem``, ``num_records``, ``steps``), ``records`` (per
        measurement: ``step``, ``affinity``, ``grad_cos``) and
        ``suggestion`` (:func:`load_suggestion`). NaN is None.

    Raises:
        ValueError: Sessions of the run measured different tasks.
    """
    from mtl_pvt.analysis.affinity import (AFFINITY_FILE, load_affinity,
                                           mean_affinity)
    try:
        data = load_affinity(work_dir)
    except FileNotFoundError:
        return None
    mean = mean_affinity(data)
    files = [
        path for path in (osp.join(work_dir, name, AFFINITY_FILE)
                          for name in sessions(work_dir)) if osp.isfile(path)
    ]
    if osp.isfile(osp.join(work_dir, AFFINITY_FILE)):
        files.append(osp.join(work_dir, AFFINITY_FILE))
    summary = dict(
        tasks=list(data['tasks']),
        stage_groups=data.get('stage_groups'),
        interval=data.get('interval'),
        files=files,
        copies=copy_order(mean['affinity']),
        **mean,
        records=[
            dict(
                step=r['step'],
                affinity=r['affinity'],
                grad_cos=r.get('grad_cos', {})) for r in data['records']
        ],
        suggestion=load_suggestion(work_dir))
    return json_safe(summary)


# -------------------------------------------------------------- markdown --
def _steps_text(steps: Sequence[int]) -> str:
    """``0, 100, 200`` or, for many, ``0, 100, ..., 4800 (every 100)``."""
    steps = list(steps)
    if len(steps) <= _MAX_STEPS_SHOWN:
        return ', '.join(str(s) for s in steps)
    gaps = {b - a for a, b in zip(steps, steps[1:])}
    every = f' (every {gaps.pop()})' if len(gaps) == 1 else ''
    return f'{steps[0]}, {steps[1]}, ..., {steps[-1]}{every}'


def _affinity_table(summary: dict) -> str:
    copies, tasks = summary['copies'], summary['tasks']
    mean, sem = summary['affinity'], summary['affinity_sem']
    rows = []
    for i, j in ordered_pairs(tasks):
        if not any(j in mean[c].get(i, {}) for c in copies):
            continue
        label = f'{i}→{j}' if i != j else f'{i}→{i} (own)'
        rows.append([label] + [
            mean_sem(mean[c].get(i, {}).get(j), sem[c].get(i, {}).get(j))
            for c in copies
        ])
    return markdown_table(['Z(i→j)', *copies], rows, numbers=True)


def _cos_table(cos: Mapping,
               sem: Optional[Mapping],
               tasks: Sequence[str],
               label: str = 'cos') -> str:
    copies = list(cos)
    rows = []
    for pair in pair_keys(tasks, list(cos.values())):
        rows.append([pair.replace('-', '·')] + [
            mean_sem(cos[c].get(pair), None if sem is
                     None else sem.get(c, {}).get(pair), True) for c in copies
        ])
    return markdown_table([label, *copies], rows, numbers=True)


def _tree_lines(tree) -> str:
    from mtl_pvt.analysis.branching import format_tree
    return '```\n' + format_tree(tree) + '\n```'


def _suggestion_text(summary: dict) -> List[str]:
    suggestion = summary['suggestion']
    lines = [
        f'Suggested branching (`{suggestion["file"]}`, by '
        'tools/analysis_tools/suggest_branching.py):',
        _tree_lines(suggestion['stage_groups'])
    ]
    facts = []
    if suggestion.get('score') is not None:
        facts.append(f'score {sci(suggestion["score"])} (the mean affinity '
                     'kept inside groups, summed)')
    if suggestion.get('extra_params') is not None:
        extra = f'{suggestion["extra_params"] / 1e6:+.3f} M extra backbone ' \
            'parameters vs full sharing'
        if suggestion.get('backbone_params') is not None:
            extra += f' (backbone {suggestion["backbone_params"] / 1e6:.3f} M)'
        facts.append(extra)
    if suggestion.get('branches') is not None:
        facts.append(f'{suggestion["branches"]} branch(es)')
    if suggestion.get('search'):
        facts.append(f'{suggestion["search"]} search')
    if suggestion.get('z') is not None:
        facts.append(f'means within {suggestion["z"]:g} standard errors of '
                     '0 counted as 0')
    text = []
    if facts:
        text.append('- ' + '; '.join(facts) + '.')
    if suggestion.get('config'):
        text.append(f'- Config written: `{suggestion["config"]}`.')
    used = suggestion.get('num_records')
    if used is not None and used != summary['num_records']:
        text.append(f'- Suggested from {used} measurement(s); the run now '
                    f'has {summary["num_records"]}: rerun '
                    'suggest_branching.py to use them all.')
    return lines + ['\n'.join(text)] * bool(text)


def plot_names(name: str) -> Dict[str, str]:
    """File names of a run's two affinity plots."""
    safe = re.sub(r'[^\w.-]+', '_', name)
    return dict(
        heatmaps=f'affinity_{safe}.png', curves=f'affinity_curves_{safe}.png')


def _run_section(row: dict) -> List[str]:
    summary, train = row.get('affinity'), row.get('train_grad_cos')
    parts = [f'### {row["name"]}']
    if summary is not None:
        files = ', '.join(f'`{osp.relpath(f, row["work_dir"])}`'
                          for f in summary['files'])
        parts.append(
            f'{summary["num_records"]} measurement(s) by TaskAffinityHook, at '
            f'steps {_steps_text(summary["steps"])} ({files} in '
            f'`{row["work_dir"]}`); measured tree:')
        parts.append(_tree_lines(summary['stage_groups']))
        parts.append('Mean lookahead affinity Z(i→j) ± standard error, per '
                     'shared stage copy and for the whole shared backbone '
                     '(row: the task whose gradient steps, i→j: its effect '
                     "on j's loss; > 0: helps):")
        parts.append(_affinity_table(summary))
        parts.append('Mean cosine of the task gradients at the lookahead '
                     '(TaskAffinityHook) ± standard error, per copy:')
        parts.append(
            _cos_table(summary['grad_cos'], summary['grad_cos_sem'],
                       summary['tasks']))
    if train is not None:
        counts = [n for c in train['num_values'].values() for n in c.values()]
        count = str(min(counts)) if min(counts) == max(counts) else \
            f'{min(counts)}-{max(counts)}'
        parts.append(
            'Mean cosine of the task gradients of the training steps '
            '(MultiTaskOptimWrapper, `mtl.grad_cos.*` of the training log, '
            f'{count} logged value(s) per pair, steps {train["steps"][0]} '
            f'to {train["steps"][1]}), per copy:')
        tasks = (summary or {}).get('tasks') or row['metrics'].keys()
        parts.append(
            _cos_table(train['grad_cos'], None, list(tasks), 'cos (training)'))
    if summary is not None:
        names = plot_names(row['name'])
        parts.append(f'![affinity heatmaps of {row["name"]}]'
                     f'({names["heatmaps"]})\n'
                     f'![affinity over training of {row["name"]}]'
                     f'({names["curves"]})')
        if summary['suggestion'] is not None:
            parts += _suggestion_text(summary)
    return parts


_NOTES = (
    '- Z(i→j) = 1 - L_j(after) / L_j(before), after one SGD step (the '
    "copy's learning rate, the gradient clipped as in training) of that "
    "copy along task i's gradient, each task on its own batch (Fifty et "
    'al. 2021, per stage); backbone: every shared copy on i\'s path '
    'stepped at once. Standard error: over the measurements (none with '
    'one).',
    '- Heatmaps: the colour scale is that of the cross-task values '
    '(i≠j); a task\'s own Z(i→i), much larger, saturates.',
    '- Lookahead cosines: of the task gradients that TaskAffinityHook '
    'steps along (each task\'s loss as the model returns it). Training '
    'cosines (a run with MultiTaskOptimWrapper and `stats_interval`): of '
    'the task gradients of the training steps, before per-task clipping '
    'and aggregation; a mean over the values logged.',
)


def format_affinity(report: dict) -> Optional[str]:
    """The "Task affinity" section of the runs with data, None if none."""
    rows = [
        r for r in report['runs']
        if r.get('affinity') is not None or r.get('train_grad_cos') is not None
    ]
    if not rows:
        return None
    parts = ['## Task affinity']
    for row in rows:
        parts += _run_section(row)
    parts.append('\n'.join(_NOTES))
    return '\n\n'.join(parts)


# ----------------------------------------------------------------- plots --
def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _copy_tasks(summary: dict, copy: str) -> List[str]:
    """The tasks of a copy's affinity matrix, in the run's order."""
    present = set(summary['affinity'][copy])
    for row in summary['affinity'][copy].values():
        present |= set(row)
    return [t for t in summary['tasks'] if t in present]


def plot_affinity_heatmaps(row: dict, path: str) -> None:
    """One run: mean Z(i->j) per copy and backbone (top), mean gradient
    cosine per copy (bottom)."""
    summary = row['affinity']
    copies = summary['copies']
    fig = new_figure(3.1 * len(copies) + 0.5, 5.8)
    axes = fig.subplots(2, len(copies), squeeze=False)
    for k, copy in enumerate(copies):
        tasks = _copy_tasks(summary, copy)
        mean = summary['affinity'][copy]
        matrix = [[_nan(mean.get(i, {}).get(j)) for j in tasks] for i in tasks]
        # the scale of the cross-task cells: Z(i -> i) is far larger
        cross = [
            abs(v) for a, r in enumerate(matrix)
            for b, v in enumerate(r) if a != b and math.isfinite(v)
        ] or [abs(v) for r in matrix for v in r if math.isfinite(v)]
        limit = max(cross, default=0.) or 1.
        heatmap(fig, axes[0][k], matrix, tasks, limit, f'Z(i→j): {copy}',
                compact)
        axes[0][k].set_xlabel('j (target)', fontsize=8)
        axes[0][k].set_ylabel('i (source, whose step)', fontsize=8)
        cos = summary['grad_cos'].get(copy)
        if cos is None:
            axes[1][k].set_axis_off()
            axes[1][k].text(
                0.5,
                0.5,
                'whole backbone:\nno gradient cosine'
                if copy == BACKBONE else 'no gradient cosine',
                ha='center',
                va='center',
                fontsize=8)
            continue
        cos_matrix = [[
            1. if a == b else _nan(cos.get(f'{a}-{b}', cos.get(f'{b}-{a}')))
            for b in tasks
        ] for a in tasks]
        heatmap(fig, axes[1][k], cos_matrix, tasks, 1.,
                f'gradient cosine: {copy}', lambda v: f'{v:.2f}')
    fig.suptitle(f'{row["name"]}: mean of {summary["num_records"]} '
                 'measurement(s) (TaskAffinityHook)')
    fig.savefig(path, dpi=120)


def plot_affinity_curves(row: dict, path: str) -> None:
    """One run: Z(i->j) per ordered pair over the measured steps, one
    panel per copy and backbone (top), the gradient cosines (bottom)."""
    from matplotlib.ticker import MaxNLocator
    summary = row['affinity']
    copies, records = summary['copies'], summary['records']
    steps = [r['step'] for r in records]
    fig = new_figure(3.4 * len(copies) + 0.5, 6)
    axes = fig.subplots(2, len(copies), squeeze=False)
    pairs = [(i, j) for i, j in ordered_pairs(summary['tasks']) if i != j]
    colors = {p: f'C{n}' for n, p in enumerate(pairs)}
    for k, copy in enumerate(copies):
        ax = axes[0][k]
        for i, j in pairs:
            values = [
                _nan(r['affinity'].get(copy, {}).get(i, {}).get(j))
                for r in records
            ]
            if any(math.isfinite(v) for v in values):
                ax.plot(
                    steps,
                    values,
                    marker='o',
                    markersize=3,
                    label=f'{i}→{j}',
                    color=colors[(i, j)])
        ax.axhline(0, color='grey', linewidth=0.8, linestyle='--')
        ax.set_title(f'Z(i→j): {copy}', fontsize=9)
        ax.set_xlabel('training step (iteration)', fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis='y', style='sci', scilimits=(-2, 2))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax = axes[1][k]
        keys = pair_keys(summary['tasks'],
                         [r['grad_cos'].get(copy, {}) for r in records])
        if not keys:
            ax.set_axis_off()
            continue
        for n, key in enumerate(keys):
            ax.plot(
                steps,
                [_nan(r['grad_cos'].get(copy, {}).get(key)) for r in records],
                marker='o',
                markersize=3,
                label=key.replace('-', '·'),
                color=f'C{n}')
        ax.axhline(0, color='grey', linewidth=0.8, linestyle='--')
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(f'gradient cosine: {copy}', fontsize=9)
        ax.set_xlabel('training step (iteration)', fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f'{row["name"]}: task affinity over training '
                 '(TaskAffinityHook)')
    fig.savefig(path, dpi=120)


def write_affinity_plots(report: dict, out_dir: str) -> List[str]:
    """The two plots of every run with affinity data; their paths."""
    paths = []
    for row in report['runs']:
        if row.get('affinity') is None:
            continue
        names = plot_names(row['name'])
        heatmaps = osp.join(out_dir, names['heatmaps'])
        curves = osp.join(out_dir, names['curves'])
        plot_affinity_heatmaps(row, heatmaps)
        plot_affinity_curves(row, curves)
        paths += [heatmaps, curves]
    return paths


@REPORT_SECTIONS.register_module()
class TaskAffinitySection(ReportSection):
    """The "Task affinity" section: for each multi-task run, what
    ``TaskAffinityHook`` measured (:func:`load_affinity_summary`), the
    training gradient cosines (:func:`train_grad_cos`) and the suggested
    tree; heatmaps and curves per run that measured."""

    keys = ('affinity', 'train_grad_cos')

    def load(self, work_dir: str, records: Sequence[dict]) -> dict:
        return dict(
            affinity=load_affinity_summary(work_dir),
            train_grad_cos=train_grad_cos(records))

    def markdown(self, report: dict) -> Optional[str]:
        return format_affinity(report)

    def plots(self, report: dict, out_dir: str) -> List[str]:
        return write_affinity_plots(report, out_dir)
