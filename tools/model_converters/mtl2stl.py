"""Export task branches of a multi-task checkpoint as native OpenMMLab
models.

For each task, writes ``{out_dir}/{name}_{task}.pth`` (the STL key layout
of mmpretrain, mmdet or mmseg) and ``{out_dir}/{name}_{task}.py`` (a config
that plain mmpretrain / mmdet / mmseg load without mtl_pvt)::

    python tools/model_converters/mtl2stl.py \\
        configs/mtl/pvtv2_b2_partial_share_s2.py \\
        work_dirs/pvtv2_b2_partial_share_s2/iter_90000.pth exported/ \\
        --tasks cls det

    # then, e.g., mmdet's own inference or tools/test.py:
    python -c "from mmdet.apis import init_detector, inference_detector; \\
        m = init_detector('exported/pvtv2_b2_partial_share_s2_det.py', \\
        'exported/pvtv2_b2_partial_share_s2_det.pth', device='cpu'); \\
        print(inference_detector(m, 'demo.jpg'))"
"""
import argparse
import os.path as osp
import sys

from mmengine.logging import print_log

from mtl_pvt.converters import mtl_to_stl, save_exports


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Export task branches of an MTL checkpoint as native '
        'mmpretrain / mmdet / mmseg checkpoints and configs')
    parser.add_argument('config', help='MTL config file')
    parser.add_argument('checkpoint', help='MTL checkpoint')
    parser.add_argument('out_dir', help='folder for the exported files')
    parser.add_argument(
        '--tasks', nargs='+', help='tasks to export (default: all)')
    parser.add_argument(
        '--name',
        help='stem of the exported files (default: the config file stem)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    name = args.name or osp.splitext(osp.basename(args.config))[0]
    try:
        exports = mtl_to_stl(args.config, args.checkpoint, args.tasks)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    for task, (config, checkpoint) in save_exports(exports, args.out_dir,
                                                   name).items():
        print_log(f'{task}: {config} {checkpoint}', logger='current')
    return 0


if __name__ == '__main__':
    sys.exit(main())
