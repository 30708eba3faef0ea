"""The report's figures: main metrics, delta-m against size, losses.

Drawn by matplotlib's Agg backend on :class:`~matplotlib.figure.Figure` s
of their own (no pyplot state); matplotlib is imported on first use.
"""
from typing import Dict


def new_figure(width: float, height: float):
    """A figure drawn by Agg, without pyplot's global state."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout='constrained')


def _run_colors(report: dict) -> Dict[str, str]:
    return {row['name']: f'C{i}' for i, row in enumerate(report['runs'])}


def plot_metrics(report: dict, path: str) -> None:
    """Bars of each task's main metric per run, one panel per task."""
    tasks, runs = report['tasks'], report['runs']
    colors = _run_colors(report)
    fig = new_figure(3.2 * len(tasks) + 1, 3.6)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    names = [r['name'] for r in runs]
    for ax, task in zip(axes, tasks):
        main = report['main_metrics'][task]
        values = [r['metrics'][task] for r in runs]
        bars = ax.bar(names, values, color=[colors[n] for n in names])
        labels = [format(v, '.4g') for v in values[:1]] + [
            f'{v:.4g}\n{r["changes"][task]:+.1f}%'
            for v, r in zip(values[1:], runs[1:])
        ]
        ax.bar_label(bars, labels, fontsize=7)
        ax.margins(y=0.2)
        better = 'higher' if main['higher_is_better'] else 'lower'
        ax.set_title(
            f'{task}: {main["metric"]} ({better} is better)', fontsize=9)
        ax.tick_params(axis='x', labelrotation=30, labelsize=8)
    fig.suptitle('Main metric per task (test results)')
    fig.savefig(path, dpi=120)


def plot_delta_m(report: dict, path: str) -> None:
    """Delta-m of each run against its total parameters."""
    colors = _run_colors(report)
    fig = new_figure(5.5, 4)
    ax = fig.subplots()
    ax.axhline(0, color='grey', linewidth=0.8, linestyle='--')
    for row in report['runs']:
        x = row['params_total'] / 1e6
        ax.scatter(x, row['delta_m'], color=colors[row['name']], zorder=3)
        ax.annotate(
            row['name'], (x, row['delta_m']),
            textcoords='offset points',
            xytext=(5, 5),
            fontsize=8)
    ax.margins(x=0.15, y=0.2)
    ax.set_xlabel('total parameters (M)')
    ax.set_ylabel('Δm (%) vs STL, higher is better')
    ax.set_title('Δm against model size (STL: the single-task models)')
    fig.savefig(path, dpi=120)


def plot_losses(report: dict,
                task: str,
                path: str,
                x: str = 'samples') -> None:
    """One task's training loss per run against steps or samples seen.

    Samples are used when every run logged them (else steps).
    """
    colors = _run_colors(report)
    curves = {r['name']: r['loss_curves'][task] for r in report['runs']}
    if x == 'samples' and any(c['samples'] is None for c in curves.values()):
        x = 'step'
    fig = new_figure(6, 4)
    ax = fig.subplots()
    for name, curve in curves.items():
        if curve['loss']:
            ax.plot(curve[x], curve['loss'], label=name, color=colors[name])
    ax.set_xlabel(f'{task} samples seen' if x ==
                  'samples' else 'training step (iteration)')
    ax.set_ylabel(f'{task} training loss')
    ax.set_title(f'{task}: training loss per run')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)


def heatmap(fig, ax, matrix, tasks, limit, title, fmt):
    """A task x task matrix on ``ax``, red-blue in ``[-limit, limit]``,
    each cell written with ``fmt``."""
    import numpy as np
    values = np.array(matrix, dtype=float)
    image = ax.imshow(values, cmap='RdBu_r', vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_title(title, fontsize=9)
    for (r, c), value in np.ndenumerate(values):
        color = 'white' if abs(value) > 0.6 * limit else 'black'
        ax.text(
            c,
            r,
            fmt(value),
            ha='center',
            va='center',
            fontsize=7,
            color=color)
    fig.colorbar(image, ax=ax, shrink=0.8)
