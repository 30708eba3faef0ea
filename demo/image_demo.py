"""Draw the predictions of every task of a multi-task model on an image.

Example:
    python demo/image_demo.py demo.jpg \\
        configs/demo/mtl/pvtv2_b0_full_share_demo.py \\
        work_dirs/demo_mtl/full_share/iter_480.pth --out-file result.png
"""
from argparse import ArgumentParser

import mmcv

from mtl_pvt.apis import MultiTaskInferencer


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-file', default='result.png', help='the drawn image (PNG)')
    parser.add_argument('--tasks', nargs='+', help='tasks; all by default')
    parser.add_argument(
        '--device',
        help='device, e.g. cpu or cuda:0; the available one '
        'by default')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='box score threshold')
    parser.add_argument(
        '--topk', type=int, default=5, help='classes drawn per cls task')
    args = parser.parse_args(argv)

    inferencer = MultiTaskInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        tasks=args.tasks,
        show_progress=False)
    result = inferencer(
        args.img,
        return_vis=True,
        pred_score_thr=args.score_thr,
        topk=args.topk)
    mmcv.imwrite(result['visualization'][0][..., ::-1], args.out_file)
    print(f'The drawn predictions are saved to {args.out_file}')


if __name__ == '__main__':
    main()
