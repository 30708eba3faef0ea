"""Build a checkpoint of a multi-task config from single-task checkpoints.

Sources: STL checkpoints of mmpretrain, mmdet and mmseg (``--cls``,
``--det``, ``--seg``; Runner checkpoints or bare state dicts) and/or the
official PVT v2 ImageNet checkpoint (``--pvt-official``)::

    python tools/model_converters/stl2mtl.py \\
        configs/mtl/pvtv2_b2_partial_share_s2.py mtl_init.pth \\
        --cls cls.pth --det det.pth --seg seg.pth --backbone-from det
    python tools/model_converters/stl2mtl.py \\
        configs/mtl/pvtv2_b2_full_share.py mtl_init.pth \\
        --pvt-official pvt_v2_b2.pth

Then train with ``--cfg-options load_from=mtl_init.pth``. Exits with 1 and
lists every tensor that does not fit when a source does not match the
config.
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mtl_pvt.converters import stl_to_mtl

TASKS = ('cls', 'det', 'seg')


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Build an MTL checkpoint from STL checkpoints and/or '
        'the official PVT v2 checkpoint')
    parser.add_argument('config', help='MTL config file')
    parser.add_argument('out', help='output checkpoint (.pth)')
    for task in TASKS:
        parser.add_argument(
            f'--{task}', help=f'STL checkpoint of the {task} task')
    parser.add_argument(
        '--pvt-official',
        help='official PVT v2 ImageNet checkpoint (whai362 layout)')
    parser.add_argument(
        '--backbone-from',
        help='source of the stage copies shared by several tasks: a task '
        "name, 'official' or 'average'; default: the first sharing task "
        'with a checkpoint (per-task copies come from their own task)')
    parser.add_argument(
        '--no-official-head',
        action='store_true',
        help='do not map the official head.* to the classifier head')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    checkpoints = {
        task: getattr(args, task)
        for task in TASKS if getattr(args, task)
    }
    try:
        checkpoint = stl_to_mtl(
            args.config,
            checkpoints,
            pvt_official=args.pvt_official,
            backbone_from=args.backbone_from,
            official_head=not args.no_official_head)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
    torch.save(checkpoint, args.out)
    print_log(f'saved {args.out}', logger='current')
    return 0


if __name__ == '__main__':
    sys.exit(main())
