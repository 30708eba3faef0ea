"""Write the single-task baselines matched to a multi-task config.

For each task, a one-task ``MultiTaskModel`` config with the MTL config's
batch size, schedule, iterations, optimizer and clipping
(:func:`mtl_pvt.study.matched_stl_config`), as
``<out-dir>/<config stem>_stl_<task>.py``; prints what could not be
matched, and why::

    python tools/misc/matched_stl.py \\
        configs/demo/mtl/pvtv2_b0_no_share_demo.py --out-dir work_dirs/stl
    python tools/train.py work_dirs/stl/pvtv2_b0_no_share_demo_stl_det.py
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import DictAction

from mtl_pvt.study import matched_stl_config
from mtl_pvt.study.matched import check_multi_task
from mtl_pvt.study.spec import load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the matched single-task baselines of an MTL '
        'config')
    parser.add_argument('config', help='a multi-task config (joint steps)')
    parser.add_argument(
        '--tasks', nargs='+', help='only these tasks (default: all)')
    parser.add_argument(
        '--out-dir', required=True, help='where to write the configs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override entries of CONFIG first, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, str]:
    """Write the configs; return task -> written path."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    try:
        tasks = check_multi_task(cfg)
        unknown = [t for t in args.tasks or [] if t not in tasks]
        if unknown:
            raise ValueError(f'--tasks {unknown}: {args.config} has the '
                             f'tasks {tasks}')
        # every baseline is derived before anything is written
        configs = {t: matched_stl_config(cfg, t) for t in args.tasks or tasks}
    except ValueError as e:
        raise SystemExit(f'error: {e}')
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(args.config))[0]
    written = {}
    for task, stl in configs.items():
        path = osp.join(args.out_dir, f'{stem}_stl_{task}.py')
        stl.dump(path)
        written[task] = path
        print(f'{task}: {path}')
        for note in stl.matched_stl.notes:
            print(f'  not matched: {note}')
    return written


if __name__ == '__main__':
    main()
