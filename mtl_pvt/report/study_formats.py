"""The multi-seed study report as Markdown, CSV rows and strict JSON.

Each function reads the output of :func:`~.study.build_study_report`.
"""
import math
from typing import Dict, List, Optional, Sequence

from .markdown import markdown_table, source_cells


def _g(value: Optional[float], fmt: str = '.4g') -> str:
    return '-' if value is None else format(value, fmt)


def percent(confidence: float) -> str:
    return f'{100 * confidence:g} %'


def _ci(summary: dict, fmt: str = '.4g') -> str:
    if summary['ci'] is None:
        return '- (1 seed)'
    low, high = summary['ci']
    return f'[{low:{fmt}}, {high:{fmt}}]'


def _seeds_cell(row: dict) -> str:
    return '1 seed' if row['n_seeds'] == 1 else str(row['n_seeds'])


def _spread(values: Sequence[Optional[float]], fmt: str = ',') -> str:
    """One value if the seeds agree, else ``min–max``; ``-`` if unknown."""
    if not values or None in values:
        return '-'
    low, high = min(values), max(values)
    if low == high:
        return format(low, fmt)
    return f'{low:{fmt}}–{high:{fmt}}'


def _flagged(report: dict) -> Dict[tuple, List[str]]:
    """(run, task) -> the quantities that differ from the matched STL."""
    flagged = {}
    for flag in report['budget_flags']:
        if flag['status'] == 'differs':
            flagged.setdefault((flag['arm'], flag['task']),
                               []).append(flag['quantity'])
    return flagged


def _protocol(report: dict) -> List[str]:
    level = percent(report['confidence'])
    runs = [[
        r['name'], r['kind'], ', '.join(r['tasks']),
        ', '.join(map(str, r['seeds'])),
        _seeds_cell(r)
    ] for r in report['runs']]
    metrics = [[
        task, f'`{m["metric"]}`',
        'higher' if m['higher_is_better'] else 'lower',
        'main: Δm, t-test, metrics.png' if i == 0 else 'Δm'
    ] for task, ms in report['metrics'].items() for i, m in enumerate(ms)]
    single = [r['name'] for r in report['runs'] if r['single_seed']]
    notes = [
        f'- Interval: the {level} Student-t confidence interval of the mean '
        f'over the n seeds of a run, mean ± t(n−1) · sd / √n, sd with n − 1 '
        f'degrees of freedom. A run with one seed is labelled "1 seed" and '
        f'has no interval (single-seed runs: '
        f'{", ".join(single) if single else "none"}).',
        '- Pairing: each MTL arm is compared seed by seed with the matched '
        "STL run of each of its tasks (kind 'stl': the MTL recipe with that "
        'task alone): Δm and the differences are computed for seed s of the '
        'arm against seed s of the STL runs, then summarised over the seeds; '
        'the t-tests are paired by seed and two-sided.',
        '- Δm (Vandenhende et al. 2021): 1/T Σ_t 1/|M_t| Σ_{m ∈ M_t} '
        '(−1)^{l_m} (M_m − M_stl,m) / |M_stl,m|, in %, over the metrics '
        'below (l_m = 1 when lower is better); positive = better than STL.',
    ]
    if report['references']:
        notes.append(
            '- Δm against the reference (paper-recipe) baselines '
            "(kind 'ref'): not paired; the reference value of a metric is its "
            "mean over the reference run's seeds, and the interval covers the "
            "arm's seeds only.")
    notes.append(
        '- Budget, from each run\'s `<timestamp>/vis_data/scalars.json`: '
        'samples seen and updates (iterations in which the task had samples) '
        'of a task at its last logged iteration, as `TaskMonitorHook` logs '
        'them (`<task>.samples_seen`, `<task>.updates`); a plain single-task '
        'run: iterations × batch size × world size and its iterations. '
        'Training FLOPs: forward FLOPs × samples (one forward of the task '
        'path per sample, no backward).')
    return [
        '## Protocol',
        markdown_table(['Run', 'Kind', 'Tasks', 'Seeds', 'n'], runs),
        markdown_table(['Task', 'Metric', 'Better', 'Used in'], metrics),
        '\n'.join(notes)
    ]


def _task_table(report: dict, task: str) -> str:
    level = percent(report['confidence'])
    arrows = {True: '↑', False: '↓'}
    header, flagged = ['Run', 'Seeds'], _flagged(report)
    for m in report['metrics'][task]:
        name = f'{m["metric"]} {arrows[m["higher_is_better"]]}'
        header += [f'{name} mean', 'sd', f'{level} CI']
    header += ['Samples seen', 'Updates', 'Train FLOPs (forward × samples)']
    rows = []
    for row in report['runs']:
        if task not in row['tasks']:
            continue
        cells = [row['name'], _seeds_cell(row)]
        for m in report['metrics'][task]:
            summary = row['metrics'][f'{task}/{m["metric"]}']
            cells += [_g(summary['mean']), _g(summary['sd']), _ci(summary)]
        budget = row['budget'][task]
        marks = flagged.get((row['name'], task), [])
        cells += [
            _spread(budget['samples']) + (' ⚠' if 'samples' in marks else ''),
            _spread(budget['updates']) + (' ⚠' if 'updates' in marks else ''),
            _spread(budget['train_flops'], '.3g')
        ]
        rows.append(cells)
    return markdown_table(header, rows, numbers=True)


def _delta_m_table(report: dict, comparisons: Sequence[dict]) -> str:
    level = percent(report['confidence'])
    tasks = report['tasks']
    header = [
        'Arm', 'Seeds', 'Δm mean (%)', 'sd', f'{level} CI', 'Δm per seed (%)',
        *[f'{t} change (%)' for t in tasks]
    ]
    rows = []
    for c in comparisons:
        dm = c['delta_m']
        changes = [
            _g(c['task_changes'][t]['mean'], '+.2f')
            if t in c['task_changes'] else '' for t in tasks
        ]
        rows.append([
            c['arm'], '1 seed' if dm['n'] == 1 else str(dm['n']),
            _g(dm['mean'], '+.2f'),
            _g(dm['sd'], '.2f'),
            _ci(dm, '+.2f'), ', '.join(f'{v:+.2f}' for v in dm['values']),
            *changes
        ])
    return markdown_table(header, rows, numbers=True)


def _tests_table(report: dict) -> str:
    level = percent(report['confidence'])
    rows = []
    for c in report['comparisons']:
        for task, test in c['tests'].items():
            better = 'higher' if test['higher_is_better'] else 'lower'
            rows.append([
                c['arm'], task, f'`{test["metric"]}` ({better})',
                test['baseline'],
                '1 seed' if test['n'] == 1 else str(test['n']),
                _g(test['mean_diff'], '+.4g'),
                _ci(test, '+.4g'),
                _g(test['t'], '.3f') +
                (' (identical)' if test['identical'] else ''),
                _g(test['df'], 'd'),
                _g(test['p'], '.3g')
            ])
    return markdown_table([
        'Arm', 'Task', 'Main metric', 'STL run', 'Seeds',
        'Mean diff (arm − STL)', f'{level} CI', 't', 'df', 'p (two-sided)'
    ], rows)


def _references_section(report: dict) -> List[str]:
    if not report['references']:
        return []
    done = [c for c in report['references'] if not c['missing']]
    parts = ['## Δm against the reference (paper-recipe) baselines']
    if done:
        bases = sorted({b for c in done for b in c['baselines'].values()})
        parts += [
            f'Reference runs: {", ".join(bases)} (mean over their seeds).',
            _delta_m_table(report, done)
        ]
    parts += [
        f'- {c["arm"]}: not computed, no reference run of task(s) '
        f'{c["missing"]}' for c in report['references'] if c['missing']
    ]
    return parts


def _budget_section(report: dict) -> List[str]:
    lines = []
    for flag in report['budget_flags']:
        per_seed = ', '.join(
            f'seed {s}: {_g(a, ",")} vs {_g(b, ",")}' for s, a, b in zip(
                flag['seeds'], flag['arm_values'], flag['baseline_values']))
        if flag['status'] == 'differs':
            lines.append(f'- ⚠ {flag["arm"]} / {flag["task"]}: the '
                         f'{flag["quantity"]} differ from its STL run '
                         f'{flag["baseline"]} ({per_seed}).')
        else:
            lines.append(f'- {flag["arm"]} / {flag["task"]}: the '
                         f'{flag["quantity"]} are not logged for it or its '
                         f'STL run {flag["baseline"]} ({per_seed}); not '
                         'compared.')
    if not lines:
        lines = [
            '- Every MTL task received the samples and updates of its '
            'matched STL run, at every seed.'
        ]
    return [
        '## Training budget: MTL arms against their STL runs', '\n'.join(lines)
    ]


def _costs_section(report: dict) -> List[str]:
    tasks = report['tasks']
    rows = []
    for row in report['runs']:
        flops = [
            _g(row['flops'][t] / 1e9, '.3f')
            if t in row['flops'] and row['flops'][t] is not None else
            ('-' if t in row['flops'] else '') for t in tasks
        ]
        rows.append([
            row['name'],
            _g(row['params_total'] / 1e6, '.3f'),
            _g(row['params_shared'] / 1e6, '.3f'), *flops
        ])
    if report['with_flops']:
        shapes = {}
        for row in report['runs']:
            for t, s in row['input_shapes'].items():
                shapes.setdefault(t, set()).add(f'{s[0]}x{s[1]}')
        sizes = ', '.join(f'{t} {"/".join(sorted(s))}'
                          for t, s in shapes.items())
        note = (f'GFLOPs: one forward of the task path on a 1x3xHxW input '
                f'({sizes}), MMEngine FlopAnalyzer, 1 multiply-add = 1 FLOP; '
                'Params: the whole model, Shared: backbone stages that '
                'several tasks run.')
    else:
        note = 'GFLOPs: not counted (no training FLOPs either).'
    return [
        '## Parameters and FLOPs',
        markdown_table([
            'Run', 'Params (M)', 'Shared (M)', *[f'GFLOPs {t}' for t in tasks]
        ],
                       rows,
                       numbers=True), note
    ]


def _sources_section(report: dict) -> List[str]:
    rows = []
    for row in report['runs']:
        for seed, work_dir, test_file, checkpoint in zip(
                row['seeds'], row['work_dirs'], row['test_files'],
                row['checkpoints']):
            rows.append([
                row['name'],
                str(seed), *source_cells(
                    dict(
                        work_dir=work_dir,
                        test_file=test_file,
                        checkpoint=checkpoint))
            ])
    return [
        '## Sources',
        'Test results: the latest `<timestamp>/<timestamp>.json` '
        'of each work dir; the checkpoint tested is the `load_from` of its '
        '`<timestamp>/vis_data/config.py`.',
        markdown_table(
            ['Run', 'Seed', 'Work dir', 'Test results', 'Checkpoint tested'],
            rows)
    ]


def format_study_markdown(report: dict) -> str:
    """The report as Markdown.

    Args:
        report (dict): The output of :func:`~.study.build_study_report`.

    Returns:
        str: The text of ``report.md``.
    """
    sections = ['# Multi-seed study report', *_protocol(report)]
    sections.append('## Metrics and training budget per task')
    for task in report['tasks']:
        sections += [f'### {task}', _task_table(report, task)]
    if report['comparisons']:
        sections += [
            '## Δm against the matched STL runs (paired by seed)',
            _delta_m_table(report, report['comparisons']),
            '## Paired t-tests of the main metrics: arm − matched STL run',
            _tests_table(report)
        ]
    sections += _references_section(report)
    if report['comparisons']:
        sections += _budget_section(report)
    sections += _costs_section(report)
    sections += _sources_section(report)
    return '\n\n'.join(sections) + '\n'


CSV_FIELDS = ('run', 'kind', 'task', 'quantity', 'against', 'n', 'mean', 'sd',
              'ci_low', 'ci_high', 'p', 'values')


def _csv_row(run: str,
             kind: str,
             task: Optional[str],
             quantity: str,
             summary: dict,
             against: str = '') -> dict:
    ci = summary.get('ci') or (None, None)
    values = summary.get('values', summary.get('differences'))
    return dict(
        run=run,
        kind=kind,
        task=task or '',
        quantity=quantity,
        against=against,
        n=summary['n'],
        mean=summary.get('mean', summary.get('mean_diff')),
        sd=summary['sd'],
        ci_low=ci[0],
        ci_high=ci[1],
        p=summary.get('p'),
        values=';'.join('' if v is None else repr(v) for v in values))


def study_csv_rows(report: dict) -> List[dict]:
    """``report.csv``, one row per run and quantity: metrics (mean, sd,
    interval, per-seed values), budget, parameters, and per arm delta-m,
    task changes and the paired differences (``against`` names what)."""
    rows = []
    for row in report['runs']:
        kind = row['kind']
        for key, s in row['metrics'].items():
            rows.append(_csv_row(row['name'], kind, s['task'], s['metric'], s))
        for task, budget in row['budget'].items():
            for quantity, values in budget.items():
                known = None not in values
                rows.append(
                    dict(
                        run=row['name'],
                        kind=kind,
                        task=task,
                        quantity=quantity,
                        n=len(values),
                        mean=math.fsum(values) / len(values) if known else '',
                        values=';'.join('' if v is None else str(v)
                                        for v in values)))
        for quantity in ('params_total', 'params_shared'):
            rows.append(
                dict(
                    run=row['name'],
                    kind=kind,
                    quantity=quantity,
                    mean=row[quantity]))
    for c in report['comparisons'] + report['references']:
        if 'delta_m' not in c:
            continue
        against = c['against']
        rows.append(
            _csv_row(c['arm'], 'mtl', None, 'delta_m_pct', c['delta_m'],
                     against))
        for task, s in c['task_changes'].items():
            rows.append(
                _csv_row(c['arm'], 'mtl', task, 'change_pct', s, against))
        for task, test in c.get('tests', {}).items():
            rows.append(
                _csv_row(c['arm'], 'mtl', task, f'diff/{test["metric"]}', test,
                         test['baseline']))
    return rows


def jsonable(value):
    """``value`` with tuples as lists and inf/nan as strings (strict
    JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
