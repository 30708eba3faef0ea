"""Predict the tasks of a multi-task checkpoint on images.

Each image is preprocessed once and each shared backbone stage runs once
for all tasks (see ``MultiTaskInferencer``). For every image, the drawn
predictions go to ``OUT_DIR/vis/<image>.png`` and the predictions to
``OUT_DIR/preds/<image>.json`` (segmentation maps as PNGs beside them).

Example:
    python tools/infer.py configs/demo/mtl/pvtv2_b0_full_share_demo.py \\
        work_dirs/demo_study/full_share/seed_0/iter_240.pth demo.jpg \\
        --tasks det seg
"""
import argparse
from typing import List, Optional

from mtl_pvt.apis import MultiTaskInferencer
from mtl_pvt.utils.tool_args import check_path_args, show_warnings_once


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` if ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Predict the tasks of a multi-task model on images')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        'images', nargs='+', help='image files, or one directory of them')
    parser.add_argument(
        '--tasks', nargs='+', help='tasks to predict; all by default')
    parser.add_argument(
        '--out-dir',
        default='outputs',
        help='directory for vis/*.png and preds/*.json')
    parser.add_argument(
        '--topk',
        type=int,
        default=5,
        help='classes drawn and listed per classification task')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='score from which detected boxes are drawn')
    parser.add_argument(
        '--scale',
        type=int,
        nargs=2,
        metavar=('W', 'H'),
        help='resize images to this scale (keeping their aspect ratio); '
        "defaults to the scale of the config's test pipelines")
    parser.add_argument(
        '--device',
        help='device, e.g. cpu or cuda:0; the available one '
        'by default')
    parser.add_argument(
        '--print-result',
        action='store_true',
        help='print the predictions of every image')
    parser.add_argument(
        '--show', action='store_true', help='show the drawn predictions')
    args = parser.parse_args(argv)
    check_path_args(
        parser,
        config=args.config,
        checkpoint=args.checkpoint,
        images=args.images,
        order='CONFIG CHECKPOINT IMAGE [IMAGE ...]')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the inference; returns the inferencer's result."""
    show_warnings_once()
    args = parse_args(argv)
    inferencer = MultiTaskInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        tasks=args.tasks,
        scale=tuple(args.scale) if args.scale else None)
    images = args.images[0] if len(args.images) == 1 else args.images
    result = inferencer(
        images,
        out_dir=args.out_dir,
        topk=args.topk,
        pred_score_thr=args.score_thr,
        print_result=args.print_result,
        show=args.show)
    print(f'{len(result["predictions"])} image(s): drawings in '
          f'{args.out_dir}/vis, predictions in {args.out_dir}/preds')
    return result


if __name__ == '__main__':
    main()
