"""What the command-line tools check before anything is built: that each
path argument is what its place says (a config where the config belongs),
and that a third-party warning is shown once, not once per model built."""
import argparse
import os.path as osp
import warnings
from typing import Optional, Sequence

CONFIG_SUFFIXES = ('.py', '.yml', '.yaml', '.json')
CHECKPOINT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.bin', '.safetensors')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def _looks_like(path: str) -> str:
    suffix = osp.splitext(path)[1].lower()
    if suffix in CONFIG_SUFFIXES:
        return 'a config'
    if suffix in CHECKPOINT_SUFFIXES:
        return 'a checkpoint'
    if suffix in IMAGE_SUFFIXES:
        return 'an image'
    return 'a folder' if osp.isdir(path) else f'a {suffix or "file"} file'


def check_path_args(parser: argparse.ArgumentParser,
                    config: Optional[str] = None,
                    checkpoint: Optional[str] = None,
                    images: Sequence[str] = (),
                    order: str = '') -> None:
    """``parser.error`` (exit code 2, the usage printed) naming the first
    argument that is missing or not what its place needs.

    Args:
        config (str, optional): Must be an existing .py/.yml/.yaml/.json.
        checkpoint (str, optional): Must exist and not be a config or an
            image (a URL is left to the loader).
        images (Sequence[str]): Must exist (files or folders).
        order (str): The arguments' order, named in the message.
    """
    hint = f' (the order is: {order})' if order else ''
    if config is not None:
        if osp.splitext(config)[1].lower() not in CONFIG_SUFFIXES:
            parser.error(f'argument config: {config!r} looks like '
                         f'{_looks_like(config)}, not a config (.py, .yml, '
                         f'.yaml, .json){hint}')
        if not osp.isfile(config):
            parser.error(f'argument config: no such file: {config!r}')
    if checkpoint is not None and '://' not in checkpoint:
        what = _looks_like(checkpoint)
        if what in ('a config', 'an image'):
            parser.error(f'argument checkpoint: {checkpoint!r} looks like '
                         f'{what}, not a checkpoint{hint}')
        if not osp.exists(checkpoint):
            parser.error(f'argument checkpoint: no such file: {checkpoint!r}')
    for image in images:
        if '://' not in image and not osp.exists(image):
            parser.error(f'argument images: no such file or folder: '
                         f'{image!r}{hint}')


def show_warnings_once() -> None:
    """Show each warning once per process, by its text: the libraries warn
    from the same lines at every model they build, and a filter reset
    (``warnings.catch_warnings``) makes Python forget which ones it showed.
    Appended, so ``-W`` and ``PYTHONWARNINGS`` still decide first."""
    warnings.filterwarnings('once', append=True)
