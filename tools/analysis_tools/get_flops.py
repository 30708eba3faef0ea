"""Parameters and FLOPs of each task path of an mtl_pvt config.

Works on single-task configs (one path: the whole model) and multi-task
configs (one path per task: its backbone stage copies, neck and heads)::

    python tools/analysis_tools/get_flops.py configs/mtl/pvtv2_b2_full_share.py
    python tools/analysis_tools/get_flops.py CONFIG --shape det=800,1333 \\
        --shape seg=512 --out flops.json
    python tools/analysis_tools/get_flops.py CONFIG --no-flops

Inputs are ``1x3xHxW``; by default the standard input of each task's kind
(:attr:`mtl_pvt.tasks.TaskKind.input_shape`): 224x224 for classifiers,
800x1280 (H x W) for detectors and 512x512 for segmentors. ``--shape``
takes a task name, a kind name or nothing (all tasks). The backbone
checkpoint is never loaded: only the architecture matters.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmengine.config import DictAction
from mmengine.utils import mkdir_or_exist

from mtl_pvt.analysis import complexity_report, format_report
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.report import parse_shape as input_shape
from mtl_pvt.tasks import all_kinds


def parse_shape(text: str) -> Tuple[str, Tuple[int, int]]:
    """``'task=H,W'``, ``'H,W'`` or ``'S'`` -> ``(task or '', (H, W))``."""
    task, _, size = text.rpartition('=')
    try:
        return task, input_shape(size)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--shape takes [TASK=]H,W or [TASK=]SIZE, not {text!r}') from None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    kinds = {name: kind.input_shape for name, kind in all_kinds().items()}
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of the task paths of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=parse_shape,
        action='append',
        default=[],
        metavar='[TASK=]H,W',
        help='input height,width for TASK (a task name, or a kind: '
        f'{", ".join(kinds)}), or for all tasks without TASK; repeatable. '
        'Defaults: ' + ', '.join(f'{name} {h},{w}'
                                 for name, (h, w) in kinds.items()))
    parser.add_argument(
        '--out', help='also write the numbers to this JSON file')
    parser.add_argument(
        '--no-flops', action='store_true', help='count parameters only (fast)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict:
    """Print the table (and write ``--out``); return the numbers."""
    args = parse_args(argv)
    # the architecture is all that counts: no pretrained weights
    model = build_model_from_config(args.config, args.cfg_options)
    stem = osp.splitext(osp.basename(args.config))[0]
    report = complexity_report(
        model,
        input_shapes=dict(args.shape),
        with_flops=not args.no_flops,
        name=stem)
    print(format_report(report, title=f'Config: {args.config}'))
    if args.out:
        mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    main()
