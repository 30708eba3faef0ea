"""Suggest a backbone branching from a run's measured task affinities.

Reads the per-stage lookahead affinities that ``TaskAffinityHook`` logged
during a run (``<work_dir>/<timestamp>/affinity.json``), averages them over
the run and finds the ``stage_groups`` tree that keeps the most affinity
inside groups, within a budget (see ``mtl_pvt/analysis/branching.py``).
Prints the tree, its parameters and score next to the measured run's, and
writes a config that is CONFIG with that tree, ready to train::

    python tools/analysis_tools/suggest_branching.py \\
        configs/demo/mtl/pvtv2_b0_full_share_demo.py \\
        work_dirs/demo_study/full_share/seed_0 \\
        --max-extra-params 1.5M --out work_dirs/suggested.py
    python tools/train.py work_dirs/suggested.py

CONFIG is the run's config (its tasks must be those the run measured);
the written config inherits everything else from it.
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

from mtl_pvt.analysis.affinity import (load_affinity, mean_affinity,
                                       significant, stage_affinity)
from mtl_pvt.analysis.branching import (config_delta, format_tree, parse_count,
                                        suggest_tree, tree_score)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Suggest a stage_groups tree from measured affinities')
    parser.add_argument('config', help="the measured run's config")
    parser.add_argument(
        'run', help="the run's work dir, or one of its affinity.json files")
    parser.add_argument(
        '--max-extra-params',
        type=parse_count,
        help='at most this many backbone parameters beyond full sharing '
        '(1.5M, 200k, 150000)')
    parser.add_argument(
        '--max-branches',
        type=int,
        help='at most this many copies of the last stage')
    parser.add_argument(
        '--begin',
        type=int,
        default=0,
        help='average the measurements from this iteration on (default 0)')
    parser.add_argument(
        '--z',
        type=float,
        default=2.,
        help='treat a mean affinity within Z standard errors (over the '
        'measurements) of 0 as 0, so noise splits nothing; 0 keeps every '
        'mean as measured (default 2)')
    parser.add_argument(
        '--out',
        help='the config to write (default: suggested_branching.py in the '
        'run dir)')
    parser.add_argument(
        '--json', help='also write the suggestion as JSON to this file')
    return parser.parse_args(argv)


def backbone_class(cfg: Config) -> Optional[type]:
    """The ``SharedBackbone`` class of ``cfg``'s model, else None."""
    from mtl_pvt.models import SharedBackbone
    from mtl_pvt.registry import MODELS
    name = (cfg.get('model') or {}).get('backbone',
                                        {}).get('type', 'SharedPVTv2')
    cls = MODELS.get(name.split('.')[-1])
    return cls if isinstance(cls, type) and \
        issubclass(cls, SharedBackbone) else None


def stage_sizes(cfg: Config, tasks: List[str]) -> List[int]:
    """Parameters of one copy of each backbone stage of ``cfg``'s model
    (with full sharing: a copy of a stage of one task may lack a part that
    only other tasks read, such as a Swin stage's norm)."""
    cls = backbone_class(cfg)
    arch = cfg.model.backbone.get('arch')
    backbone = cls(tasks=tasks, arch=arch, share_stages=cls.num_stages)
    return [
        sum(p.numel() for p in copy.module.parameters())
        for copy in backbone.stage_copies()
    ]


def check_inputs(cfg: Config, data: dict, source: str) -> List[str]:
    """The config's tasks, after checking they are the measured ones."""
    model = cfg.get('model') or {}
    if model.get('type', '').split('.')[-1] != 'MultiTaskModel' or \
            backbone_class(cfg) is None:
        raise SystemExit(f'error: {cfg.filename} is not a multi-task config '
                         '(model MultiTaskModel on a SharedBackbone such as '
                         'SharedPVTv2)')
    tasks = list(model.get('tasks') or {})
    if sorted(tasks) != sorted(data['tasks']):
        raise SystemExit(
            f'error: {source} measured tasks {data["tasks"]}, but '
            f'{cfg.filename} has tasks {tasks}: give the config of the '
            'measured run')
    return tasks


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    try:
        data = load_affinity(args.run)
        mean = mean_affinity(data, args.begin)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    tasks = check_inputs(cfg, data, args.run)
    num_stages = len(data['stage_groups'])
    measured_affinities = [stage_affinity(mean, s) for s in range(num_stages)]
    affinities = [
        significant(a, stage_affinity(mean, s, 'affinity_sem'), args.z)
        for s, a in enumerate(measured_affinities)
    ]
    if mean['num_records'] < 2 and args.z > 0:
        print('note: one measurement, no standard error: every mean '
              'affinity is used as measured')
    sizes = stage_sizes(cfg, tasks)
    measured = data['stage_groups']
    try:
        best = suggest_tree(tasks, affinities, sizes, args.max_extra_params,
                            args.max_branches, measured)
    except ValueError as e:
        raise SystemExit(f'error: {e}')
    full = sum(sizes)
    backbone_params = full + best['extra_params']
    print(f'affinity: mean of {mean["num_records"]} measurement(s) at '
          f'iterations {mean["steps"]} of {args.run}')
    print(f'  (mean +- standard error; * within {args.z:g} errors of 0, '
          'counted as 0)')
    for s, a in enumerate(measured_affinities):
        sem = stage_affinity(mean, s, 'affinity_sem')
        pairs = ', '.join(
            f'{i}->{j} {a[i][j]:+.2e}+-{sem[i][j]:.1e}'
            f"{'*' if affinities[s][i][j] == 0 and a[i][j] != 0 else ''}"
            for i in a for j in a[i] if i != j)
        print(f'  stage {s}: {pairs}')
    print('measured run:')
    print(format_tree(measured))
    print(f'  score {tree_score(measured, affinities):+.3e}')
    print(f'suggested tree ({best["search"]} search):')
    print(format_tree(best['stage_groups']))
    print(f'  score {best["score"]:+.3e}, backbone {backbone_params / 1e6:.3f}'
          f' M parameters ({best["extra_params"] / 1e6:+.3f} M vs full '
          f'sharing, {full / 1e6:.3f} M), {best["branches"]} branch(es)')
    out = args.out or osp.join(
        args.run if osp.isdir(args.run) else osp.dirname(args.run),
        'suggested_branching.py')
    header = (f'Written by tools/analysis_tools/suggest_branching.py from '
              f'the affinities of {args.run}\n(mean of '
              f'{mean["num_records"]} measurements, score '
              f'{best["score"]:+.3e}, {best["extra_params"]} extra '
              'backbone parameters).')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write(config_delta(best['stage_groups'], args.config, out, header))
    # the written config must build: the backbone checks the tree
    from mtl_pvt.apis import build_model_from_config
    model = build_model_from_config(out)
    total = sum(p.numel() for p in model.parameters())
    print(f'wrote {out} (builds: {total / 1e6:.3f} M parameters in all)')
    result = dict(
        best,
        measured=measured,
        backbone_params=backbone_params,
        total_params=total,
        stage_params=sizes,
        config=out,
        affinity=measured_affinities,
        affinity_used=affinities,
        z=args.z,
        num_records=mean['num_records'])
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
