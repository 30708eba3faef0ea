"""Report of a multi-task study: MTL runs against their STL baselines.

Reads each run's work dir (test results of tools/test.py, training logs,
dumped config) and writes ``report.md``, ``report.csv``, ``report.json``,
``metrics.png``, ``delta_m_vs_params.png`` and ``loss_<task>.png``; for
each MTL run that measured its task affinity (``TaskAffinityHook``'s
``<timestamp>/affinity.json``), a "Task affinity" section, with the tree
of ``<work_dir>/suggested_branching.json`` if there is one (the ``--json``
of suggest_branching.py), and ``affinity_<run>.png`` (heatmaps per stage
copy) and ``affinity_curves_<run>.png`` (over training)::

    python tools/analysis_tools/mtl_report.py \\
        --stl cls=work_dirs/demo/cls det=work_dirs/demo/retinanet \\
              seg=work_dirs/demo/semfpn \\
        --mtl full_share=work_dirs/demo_mtl/full_share \\
              partial_share_s2=work_dirs/demo_mtl/partial_share_s2 \\
        --shape cls=64 det=128 seg=128 --out work_dirs/demo_study
    python tools/analysis_tools/mtl_report.py --study study.py --out DIR

A study file (``.py`` or ``.json``) holds ``stl`` (task -> work dir),
``mtl`` (run name -> work dir) and optionally ``main_metrics`` (task ->
metric name or ``dict(metric=..., higher_is_better=...)``) and ``shapes``
(task -> SIZE, "H,W" or (H, W)); ``--stl``, ``--mtl`` and ``--shape`` add
to or override its entries. A task's main metric is by default that of
its kind, read from the runs' configs (``mtl_pvt.tasks``): a classifier
``accuracy/top1``, a detector ``coco/bbox_mAP``, a segmentor ``mIoU``, all
higher is better; a task of no known kind needs its ``main_metrics``
entry. FLOPs are counted at 224x224 (cls), 800x1280 (det) and 512x512
(seg) unless ``--shape`` says otherwise; ``--no-flops`` skips them.
"""
import argparse
import sys
from typing import Dict, List, Optional

from mtl_pvt.report import build_report, load_study, parse_shape, write_report


def _pairs(values: List[str], option: str) -> Dict[str, str]:
    """``['a=x', 'b=y']`` -> ``{'a': 'x', 'b': 'y'}``."""
    pairs = {}
    for value in values:
        key, sep, rest = value.partition('=')
        if not sep or not key or not rest:
            raise SystemExit(f'mtl_report: error: {option} takes NAME=VALUE '
                             f'items, not {value!r}')
        pairs[key] = rest
    return pairs


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Compare multi-task runs with single-task baselines')
    parser.add_argument(
        '--stl',
        nargs='+',
        action='extend',
        default=[],
        metavar='TASK=DIR',
        help='work dir of the single-task run of each task')
    parser.add_argument(
        '--mtl',
        nargs='+',
        action='extend',
        default=[],
        metavar='NAME=DIR',
        help='work dir of each multi-task run, named e.g. by its sharing')
    parser.add_argument(
        '--study',
        help='a .py or .json file with stl, mtl, main_metrics, '
        'shapes')
    parser.add_argument(
        '--shape',
        nargs='+',
        action='extend',
        default=[],
        metavar='[TASK=]H,W',
        help='input size for the FLOPs of TASK (a task name or cls, det, '
        'seg; all tasks without TASK): SIZE or H,W. Defaults: cls 224, '
        'det 800,1280, seg 512')
    parser.add_argument(
        '--no-flops', action='store_true', help='count parameters only')
    parser.add_argument(
        '--loss-x',
        choices=['samples', 'step'],
        default='samples',
        help='x axis of the loss curves: samples seen (when every run logs '
        'them, else steps) or training steps')
    parser.add_argument('--out', required=True, help='output folder')
    return parser.parse_args(argv)


def gather_study(args: argparse.Namespace) -> dict:
    """The study file's entries updated with the command line's."""
    study = load_study(args.study) if args.study else dict(
        stl={}, mtl={}, main_metrics={}, shapes={})
    study['stl'].update(_pairs(args.stl, '--stl'))
    study['mtl'].update(_pairs(args.mtl, '--mtl'))
    for text in args.shape:  # [TASK=]SIZE; no TASK: all tasks
        task, _, size = text.rpartition('=')
        study['shapes'][task] = parse_shape(size)
    return study


def main(argv: Optional[List[str]] = None) -> dict:
    """Write the report into ``--out``; return its numbers."""
    args = parse_args(argv)
    try:
        study = gather_study(args)
        report = build_report(
            study['stl'],
            study['mtl'],
            main_metrics=study['main_metrics'],
            shapes=study['shapes'],
            with_flops=not args.no_flops)
    except (FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if error.args else repr(error)
        raise SystemExit(f'mtl_report: error: {message}')
    paths = write_report(report, args.out, args.loss_x)
    print('\n'.join(['Wrote:', *paths]), file=sys.stderr)
    return report


if __name__ == '__main__':
    main()
