"""Shared fixtures: a tiny ImageNet-layout data set and classifier config.

The tiny classifier is mmpretrain's ``ImageClassifier`` on mmdet's
``PyramidVisionTransformerV2`` (8-16 channels, one block per stage) with
mtl_pvt's ``ListGlobalAveragePooling`` neck, so training it for a few
iterations on the CPU takes seconds, and it runs through the same
registries and scopes as the project's configs.

Fixtures:

- ``repo_root``: the repository root.
- ``tiny_imagenet``: a data root with 8 train and 4 val 32x32 images.
- ``tiny_cls_config``: a config file of the tiny classifier on it.
- ``tiny_cls_checkpoint``: that config trained for 2 iterations (session
  scope, trained once) and its checkpoint.
- ``run_tool``: runs a script of ``tools/`` in a subprocess.
- ``demo_images``: one val image per task of a tiny demo data set (module
  scope).
- ``train_fork_server``: a ``TrainForkServer`` that starts
  ``tools/train.py`` runs without importing the libraries each time
  (session scope).
"""
import glob
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path
from typing import Callable, Tuple

import numpy as np
import pytest
from PIL import Image

from mtl_pvt.demo import make_demo_data

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY_CLS_CONFIG = """\
default_scope = 'mtl_pvt'
data_root = {data_root!r}
model = dict(
    type='mmpretrain.ImageClassifier',
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor',
        num_classes=2,
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(
        type='mmdet.PyramidVisionTransformerV2',
        embed_dims=8,
        num_layers=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        mlp_ratios=[2, 2, 2, 2]),
    neck=dict(type='ListGlobalAveragePooling'),
    head=dict(
        type='mmpretrain.LinearClsHead',
        num_classes=2,
        in_channels=16,
        loss=dict(type='mmpretrain.CrossEntropyLoss')))
pipeline = [
    dict(type='mmpretrain.LoadImageFromFile'),
    dict(type='mmpretrain.PackInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmpretrain.CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        metainfo=dict(classes=('cat', 'dog')),
        pipeline=pipeline))
test_dataloader = dict(
    batch_size=2,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmpretrain.CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='val',
        metainfo=dict(classes=('cat', 'dog')),
        pipeline=pipeline))
test_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters})
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval={max_iters}, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmpretrain.VisualizationHook', enable=False))
visualizer = dict(
    type='mmpretrain.UniversalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')])
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
randomness = dict(seed=0)
"""


def write_tiny_imagenet(root: Path,
                        num_train: int = 8,
                        num_val: int = 4) -> Path:
    """Write random 32x32 PNGs of 2 classes in the ImageNet layout.

    ``train/<class>/*.png`` and ``val/<class>/*.png`` with
    ``meta/train.txt`` and ``meta/val.txt`` listing ``<path> <label>``.
    """
    rng = np.random.default_rng(0)
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    for split, num in (('train', num_train), ('val', num_val)):
        lines = []
        for i in range(num):
            label = i % 2
            rel = f'{("cat", "dog")[label]}/{i}.png'
            (root / split / rel).parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / rel)
            lines.append(f'{rel} {label}\n')
        (root / 'meta' / f'{split}.txt').write_text(''.join(lines))
    return root


def write_tiny_cls_config(path: Path,
                          data_root: Path,
                          max_iters: int = 4) -> Path:
    """Write the tiny classifier config to ``path``; a checkpoint is saved
    at ``max_iters``."""
    path.write_text(
        TINY_CLS_CONFIG.format(data_root=str(data_root), max_iters=max_iters))
    return path


def tool_env(**extra: str) -> dict:
    """Environment for a tool subprocess: the repo importable, this Python
    as ``PYTHON`` for the shell tools, one thread per process (torchrun's
    default; few cores here) and ``extra`` variables."""
    env = dict(os.environ, PYTHON=sys.executable, **extra)
    paths = [str(REPO_ROOT), env.get('PYTHONPATH', '')]
    env['PYTHONPATH'] = os.pathsep.join(p for p in paths if p)
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def run(args,
        cwd: Path,
        timeout: int = 300,
        **env: str) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` with :func:`tool_env`, capturing text."""
    return subprocess.run([str(arg) for arg in args],
                          cwd=cwd,
                          env=tool_env(**env),
                          capture_output=True,
                          text=True,
                          timeout=timeout)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory) -> Path:
    """Data root of a tiny 2-class ImageNet-layout data set (session)."""
    return write_tiny_imagenet(tmp_path_factory.mktemp('tiny_imagenet'))


@pytest.fixture
def tiny_cls_config(tmp_path, tiny_imagenet) -> Path:
    """A tiny classifier config in ``tmp_path`` (4 iterations, checkpoint
    at the end)."""
    return write_tiny_cls_config(tmp_path / 'tiny_cls.py', tiny_imagenet)


@pytest.fixture
def run_tool(tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """``run_tool('train.py', *args, timeout=300, **env)`` runs
    ``tools/train.py`` with this Python in ``tmp_path``; a ``.sh`` tool runs
    with bash. Keyword arguments other than ``timeout`` are extra
    environment variables."""

    def _run(tool: str, *args, timeout: int = 300, **env: str):
        script = REPO_ROOT / 'tools' / tool
        cmd = ['bash'] if tool.endswith('.sh') else [sys.executable]
        return run([*cmd, script, *args], tmp_path, timeout, **env)

    return _run


@pytest.fixture(scope='session')
def tiny_cls_checkpoint(tmp_path_factory, tiny_imagenet) -> Tuple[Path, Path]:
    """``(config, checkpoint)`` of the tiny classifier trained for 2
    iterations with ``tools/train.py`` (trained once per session)."""
    root = tmp_path_factory.mktemp('tiny_cls_trained')
    config = write_tiny_cls_config(root / 'tiny_cls.py', tiny_imagenet, 2)
    work_dir = root / 'work_dir'
    result = run([
        sys.executable, REPO_ROOT / 'tools' / 'train.py', config, '--work-dir',
        work_dir
    ], root)
    assert result.returncode == 0, result.stdout + result.stderr
    return config, work_dir / 'iter_2.pth'


@pytest.fixture(scope='module')
def demo_images(tmp_path_factory):
    """One val image per task of a tiny demo data set."""
    root = str(tmp_path_factory.mktemp('demo_data'))
    make_demo_data(
        root,
        cls_train_per_class=1,
        cls_val_per_class=1,
        det_train=1,
        det_val=1,
        seg_train=1,
        seg_val=1)
    patterns = dict(
        cls='imagenet/val/*.JPEG',
        det='coco/val2017/*.jpg',
        seg='ade/ADEChallengeData2016/images/validation/*.jpg')
    return {
        t: sorted(glob.glob(osp.join(root, p)))[0]
        for t, p in patterns.items()
    }


@pytest.fixture(scope='session')
def train_fork_server():
    """Starts ``tools/train.py`` runs as forks of one process that imported
    the libraries once (``mtl_pvt.testing.demo_runs.TrainForkServer``)."""
    from mtl_pvt.testing.demo_runs import TrainForkServer
    with TrainForkServer() as server:
        yield server
