"""Linear CKA between the task branches of an MTL model, per stage.

Runs every task path of the MTL model's ``SharedPVTv2`` on one fixed probe
batch and prints, per stage, the CKA between the stage outputs of each pair
of tasks (1 by construction where they share the stage copy); with
``--stl``, also the CKA per stage between a single-task model's backbone
and the MTL branch of its task::

    python tools/analysis_tools/feature_similarity.py \\
        configs/demo/mtl/pvtv2_b0_partial_share_s2_demo.py MTL_CKPT \\
        --stl cls=configs/demo/stl/pvtv2_b0_cls_demo.py:STL_CKPT \\
        --images 32 --size 128 --out cka.json

The probe is synthetic unless ``--images-dir`` is given: ``--images``
uniform random RGB images (values 0-255, from a generator seeded with
``--seed``), so it says how branches differ on the same input, not on the
data they were trained for. ``--images-dir DIR`` takes the first
``--images`` images under DIR (sorted), resized to ``--size`` x
``--size``. Either way the images are normalised with the mean and std of
the first classification task's data preprocessor (else ImageNet's).

Feature maps are flattened per image (``--pool``: averaged over space).
With few images and many dimensions, the biased CKA of Kornblith et al. is
high even for unrelated features: compare the numbers with each other, use
more images, or ``--debiased`` (near 0 for unrelated features).
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.runner import load_checkpoint
from mmengine.utils import mkdir_or_exist, scandir

from mtl_pvt.analysis.cka import branch_cka, cross_model_cka, format_branch_cka
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.tasks import model_task_kinds
from mtl_pvt.utils import register_all_modules

# RGB, 0-255: the normalisation of every config of this repository
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_stl(text: str) -> Tuple[str, str, str]:
    """``'TASK=CONFIG:CHECKPOINT'`` -> ``(task, config, checkpoint)``.

    The config is split off at the first ``':'``, so the checkpoint may be
    a URL.
    """
    task, _, rest = text.partition('=')
    config, _, checkpoint = rest.partition(':')
    if not (task and config and checkpoint):
        raise argparse.ArgumentTypeError(
            f'--stl takes TASK=CONFIG:CHECKPOINT, not {text!r}')
    return task, config, checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Linear CKA between the task branches of an MTL model '
        '(and STL backbones), per backbone stage')
    parser.add_argument('config', help='MTL config file path')
    parser.add_argument('checkpoint', help='MTL checkpoint file or URL')
    parser.add_argument(
        '--stl',
        type=parse_stl,
        action='append',
        default=[],
        metavar='TASK=CONFIG:CHECKPOINT',
        help='an STL model of TASK to compare with the MTL branch of TASK; '
        'repeatable')
    parser.add_argument(
        '--images', type=int, default=16, help='probe images (default 16)')
    parser.add_argument(
        '--size',
        type=int,
        default=224,
        help='side of the square probe images (default 224)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the synthetic probe')
    parser.add_argument(
        '--images-dir',
        help='take the probe images from this directory instead of '
        'generating random ones')
    parser.add_argument(
        '--pool',
        action='store_true',
        help='average feature maps over space instead of flattening them')
    parser.add_argument(
        '--debiased',
        action='store_true',
        help='unbiased HSIC estimator (near 0 for unrelated features)')
    parser.add_argument(
        '--device', default='cpu', help='device to run on (default cpu)')
    parser.add_argument('--out', help='also write the results to this JSON')
    args = parser.parse_args(argv)
    if args.images < (4 if args.debiased else 2) or args.size < 32:
        parser.error('needs --images >= 2 (4 with --debiased) and '
                     f'--size >= 32, but got {args.images} and {args.size}')
    return args


def load_model(model: torch.nn.Module, checkpoint: str) -> torch.nn.Module:
    """Load ``checkpoint`` into ``model`` (strict, on the CPU); eval mode."""
    register_all_modules(init_default_scope=False)  # torch.load allow-list
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.eval()


def normalisation(model: torch.nn.Module) -> Dict:
    """Mean, std (RGB, 0-255) and channel order of the probe.

    Those of the first classification task's data preprocessor, else
    ImageNet's in RGB.
    """
    kinds = model_task_kinds(model)
    for name, task_model in model.tasks.items():
        pre = task_model.data_preprocessor
        if getattr(kinds[name], 'name', None) == 'cls' and \
                getattr(pre, 'mean', None) is not None:
            return dict(
                source=f'{name} data_preprocessor',
                mean=pre.mean.flatten().tolist(),
                std=pre.std.flatten().tolist(),
                to_rgb=bool(getattr(pre, 'to_rgb', True)))
    return dict(
        source='ImageNet',
        mean=list(IMAGENET_MEAN),
        std=list(IMAGENET_STD),
        to_rgb=True)


def read_images(images_dir: str, num: int, size: int,
                to_rgb: bool) -> torch.Tensor:
    """Up to ``num`` images under ``images_dir`` (sorted, recursive),
    resized to ``size`` x ``size``, as a float ``(n, 3, size, size)``
    batch of 0-255 values."""
    names = sorted(
        scandir(
            images_dir,
            suffix=IMAGE_SUFFIXES,
            recursive=True,
            case_sensitive=False))[:num]
    if not names:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) '
                                f'under {images_dir}')
    arrays = []
    for name in names:
        image = mmcv.imread(osp.join(images_dir, name))  # BGR
        image = mmcv.imresize(image, (size, size))
        arrays.append(mmcv.bgr2rgb(image) if to_rgb else image)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()


def probe_batch(num: int,
                size: int,
                seed: int,
                norm: Dict,
                images_dir: Optional[str] = None) -> torch.Tensor:
    """The normalised probe batch ``(N, 3, size, size)``.

    Args:
        num (int): Number of images (at most, with ``images_dir``).
        size (int): Side of the images.
        seed (int): Seed of the synthetic images.
        norm (dict): :func:`normalisation`.
        images_dir (str, optional): Read the images from here instead of
            generating them. Defaults to None.
    """
    if images_dir:
        images = read_images(images_dir, num, size, norm['to_rgb'])
    else:
        generator = torch.Generator().manual_seed(seed)
        images = torch.randint(
            0, 256, (num, 3, size, size), generator=generator).float()
    mean = torch.tensor(norm['mean']).view(1, -1, 1, 1)
    std = torch.tensor(norm['std']).view(1, -1, 1, 1)
    return (images - mean) / std


def format_stl(rows: Dict[str, Dict]) -> str:
    """CKA per stage of STL backbones vs MTL branches, as a text table."""
    lines = [
        'STL backbone vs MTL branch of its task, per stage:',
        'task      ' + ''.join(f'stage {s}'.rjust(9) for s in range(
            max((len(r['cka']) for r in rows.values()), default=0)))
    ]
    for task, row in rows.items():
        lines.append(
            task.ljust(10) + ''.join(f'{v:.4f}'.rjust(9) for v in row['cka']))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> Dict:
    """Print the tables (and write ``--out``); return the results."""
    args = parse_args(argv)
    model = load_model(build_model_from_config(args.config), args.checkpoint)
    model.to(args.device)
    unknown = sorted({t for t, _, _ in args.stl} - set(model.task_names))
    if unknown:
        raise ValueError(f'--stl names task(s) {unknown} that the MTL model '
                         f'does not have (tasks: {model.task_names})')
    norm = normalisation(model)
    images = probe_batch(args.images, args.size, args.seed, norm,
                         args.images_dir)
    options = dict(pool=args.pool, debiased=args.debiased)
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        probe=dict(
            kind='images_dir' if args.images_dir else 'synthetic',
            images_dir=args.images_dir,
            num_images=int(images.shape[0]),
            size=args.size,
            seed=None if args.images_dir else args.seed,
            normalisation=norm),
        branches=branch_cka(model, images, **options),
        stl={})
    print(f'Config: {args.config}\nProbe: {images.shape[0]} '
          f'{result["probe"]["kind"]} images of {args.size}x{args.size}, '
          f'normalised as {norm["source"]}; feature maps '
          f'{"pooled" if args.pool else "flattened"}, '
          f'{"debiased" if args.debiased else "biased"} linear CKA')
    print(format_branch_cka(result['branches']))
    for task, config, checkpoint in args.stl:
        stl_model = load_model(build_model_from_config(config), checkpoint)
        stl_model.to(args.device)
        result['stl'][task] = dict(
            config=config,
            checkpoint=checkpoint,
            cka=cross_model_cka(stl_model, None, model, task, images,
                                **options))
    if result['stl']:
        print(format_stl(result['stl']))
    if args.out:
        mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
