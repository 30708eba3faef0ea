"""Build a checkpoint of a multi-task config from single-task checkpoints.

Sources: an STL checkpoint per task of the MTL config (``--task
NAME=CHECKPOINT``, repeatable; Runner checkpoints or bare state dicts of
the library of the task's kind: mmpretrain, mmdet, mmseg) and/or the
official ImageNet checkpoint of the config's backbone (``--official``,
also ``--pvt-official``: PVT v2's, a ResNet's torchvision one, a Swin's
microsoft one)::

    python tools/model_converters/stl2mtl.py \\
        configs/mtl/pvtv2_b2_partial_share_s2.py mtl_init.pth \\
        --task cls=cls.pth --task det=det.pth --task seg=seg.pth \\
        --backbone-from det
    python tools/model_converters/stl2mtl.py \\
        configs/mtl/pvtv2_b2_full_share.py mtl_init.pth \\
        --official pvt_v2_b2.pth

Task names are those of ``model.tasks`` (``--task imnet=in1k.pth`` for a
task named ``imnet``). Then train with ``--cfg-options
load_from=mtl_init.pth``. Exits with 1 and lists every tensor that does
not fit when a source does not match the config, or names the task when a
``--task`` names no task of the config or one task twice.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mtl_pvt.converters import stl_to_mtl


def parse_task(text: str) -> Tuple[str, str]:
    """``'NAME=CHECKPOINT'`` -> ``(name, checkpoint)``; the name is split
    off at the first ``'='``."""
    name, _, checkpoint = text.partition('=')
    if not (name and checkpoint):
        raise argparse.ArgumentTypeError(
            f'--task takes NAME=CHECKPOINT, not {text!r}')
    return name, checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Build an MTL checkpoint from STL checkpoints and/or '
        'the official PVT v2 checkpoint')
    parser.add_argument('config', help='MTL config file')
    parser.add_argument('out', help='output checkpoint (.pth)')
    parser.add_argument(
        '--task',
        type=parse_task,
        action='append',
        default=[],
        metavar='NAME=CHECKPOINT',
        help='STL checkpoint of the task NAME of the MTL config (in the '
        "library of the task's kind); repeatable, once per task")
    parser.add_argument(
        '--official',
        '--pvt-official',
        dest='pvt_official',
        help="the official ImageNet checkpoint of the config's backbone "
        "(PVT v2: whai362's layout; ResNet: torchvision's; Swin: "
        "microsoft's)")
    parser.add_argument(
        '--backbone-from',
        help='source of the stage copies shared by several tasks: a task '
        "name, 'official' or 'average'; default: the first sharing task "
        'with a checkpoint (per-task copies come from their own task)')
    parser.add_argument(
        '--no-official-head',
        action='store_true',
        help='do not map the official head.* to the classifier head')
    return parser.parse_args(argv)


def task_checkpoints(given: Sequence[Tuple[str, str]],
                     tasks: List[str]) -> Dict[str, str]:
    """``--task`` pairs as task -> checkpoint.

    Raises:
        ValueError: For a name that is no task of ``tasks``, or a task
            given twice.
    """
    checkpoints = {}
    for name, checkpoint in given:
        if name not in tasks:
            raise ValueError(f'--task {name}={checkpoint}: {name!r} is not '
                             f'a task of the MTL config (tasks: {tasks})')
        if name in checkpoints:
            raise ValueError(f'--task {name} given twice: '
                             f'{checkpoints[name]} and {checkpoint}')
        checkpoints[name] = checkpoint
    return checkpoints


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    try:
        checkpoints = task_checkpoints(args.task,
                                       list(cfg.model.get('tasks') or {}))
        checkpoint = stl_to_mtl(
            cfg,
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
