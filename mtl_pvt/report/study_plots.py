"""The figures of the multi-seed study report: the main metric of each
task per run, and delta-m per arm, with their intervals."""
from .plots import new_figure
from .study_formats import percent


def plot_study_metrics(report: dict, path: str) -> None:
    """Each task's main metric per run: the mean with its interval as
    error bar, the seeds as dots; single-seed runs hollow, without bar."""
    tasks = report['tasks']
    fig = new_figure(3.4 * len(tasks) + 1, 3.8)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    colors = {r['name']: f'C{i}' for i, r in enumerate(report['runs'])}
    for ax, task in zip(axes, tasks):
        main = report['metrics'][task][0]
        rows = [r for r in report['runs'] if task in r['tasks']]
        for x, row in enumerate(rows):
            s = row['metrics'][f'{task}/{main["metric"]}']
            color = colors[row['name']]
            ax.scatter(
                [x] * s['n'],
                s['values'],
                color=color,
                s=10,
                alpha=0.4,
                zorder=2)
            if s['n'] > 1:
                ax.errorbar(
                    x,
                    s['mean'],
                    yerr=s['half_width'],
                    fmt='o',
                    color=color,
                    capsize=4,
                    zorder=3)
            else:
                ax.scatter(
                    x,
                    s['mean'],
                    facecolors='none',
                    edgecolors=color,
                    marker='D',
                    s=40,
                    zorder=3)
                ax.annotate(
                    '1 seed', (x, s['mean']),
                    textcoords='offset points',
                    xytext=(4, 4),
                    fontsize=7)
        ax.set_xticks(
            range(len(rows)), [r['name'] for r in rows],
            rotation=30,
            fontsize=8)
        ax.margins(x=0.15, y=0.2)
        better = 'higher' if main['higher_is_better'] else 'lower'
        ax.set_title(
            f'{task}: {main["metric"]} ({better} is better)', fontsize=9)
        ax.grid(axis='y', alpha=0.3)
    fig.suptitle(f'Main metric per task: mean over seeds, '
                 f'{percent(report["confidence"])} CI (dots: seeds)')
    fig.savefig(path, dpi=120)


def plot_study_delta_m(report: dict, path: str) -> None:
    """Delta-m of each arm with its interval, against total parameters
    (or arm by arm where unknown); against the references hollow."""
    params = {r['name']: r.get('params_total') for r in report['runs']}
    known = all(params[c['arm']] is not None for c in report['comparisons'])
    fig = new_figure(6, 4.2)
    ax = fig.subplots()
    ax.axhline(0, color='grey', linewidth=0.8, linestyle='--')
    arms = [c['arm'] for c in report['comparisons']]
    series = [(c, 'o', 'full') for c in report['comparisons']]
    series += [(c, 's', 'none') for c in report['references']
               if 'delta_m' in c]
    for c, marker, fill in series:
        x = params[c['arm']] / 1e6 if known else arms.index(c['arm'])
        if c['against'] == 'ref':  # beside the one against STL
            x = x * 1.04 if known else x + 0.15
        dm, color = c['delta_m'], f'C{arms.index(c["arm"])}'
        ax.errorbar(
            x,
            dm['mean'],
            yerr=dm['half_width'],
            fmt=marker,
            color=color,
            mfc=color if fill == 'full' else 'none',
            capsize=4,
            zorder=3)
        label = c['arm'] + (' (1 seed)' if dm['n'] == 1 else '')
        ref = c['against'] == 'ref'
        # against STL on the left, against the references on the right
        ax.annotate(
            label + (' vs ref' if ref else ''), (x, dm['mean']),
            textcoords='offset points',
            xytext=(6 if ref else -6, 4),
            ha='left' if ref else 'right',
            fontsize=8)
    if known:
        ax.set_xlabel('total parameters (M)')
    else:
        ax.set_xticks(range(len(arms)), arms)
    ax.margins(x=0.3, y=0.25)
    ax.set_ylabel('Δm (%) vs STL, higher is better')
    ax.set_title(
        f'Δm per arm: mean over seeds, '
        f'{percent(report["confidence"])} CI\n(filled: vs matched '
        'STL runs, hollow: vs reference baselines)',
        fontsize=9)
    fig.savefig(path, dpi=120)
