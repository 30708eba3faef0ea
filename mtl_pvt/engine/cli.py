"""Command-line arguments of ``tools/train.py`` and ``tools/test.py``.

Both tools share the arguments and their merging into the config here, so
that they behave the same (work dir, launcher, ``--cfg-options``).
"""
import argparse
import inspect
import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mtl_pvt.engine.run_recipe import ACCEPT_KEY
from mtl_pvt.registry import get_type
from mtl_pvt.structures import is_task_dict


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher``, local rank.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument(
        '--work-dir',
        help='directory for logs and checkpoints; defaults to the '
        "config's work_dir, else ./work_dirs/<config name>")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. key=value or '
        'train_dataloader.batch_size=4; lists as key="[a,b]", no spaces')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> None:
    """Export ``LOCAL_RANK`` for launchers that only pass the argument."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and merge the common arguments into it.

    The work dir is, by priority, ``--work-dir``, the config's
    ``work_dir``, then ``./work_dirs/<config file stem>``.

    Args:
        args (argparse.Namespace): Parsed arguments of
            :func:`add_common_args` and ``config``.

    Returns:
        Config: The merged config.
    """
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        stem = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mmengine's ``AmpOptimWrapper``.

    Raises:
        RuntimeError: Without a GPU (or NPU, MLU, MUSA), which
            ``AmpOptimWrapper`` asserts on, or with a wrapper that is not
            ``OptimWrapper``.
    """
    if get_device() == 'cpu':
        raise RuntimeError(
            '--amp needs a GPU (or NPU, MLU, MUSA): mmengine\'s '
            'AmpOptimWrapper refuses to run on the CPU')
    wrapper = cfg.optim_wrapper
    wrapper_type = wrapper.get('type', 'OptimWrapper').split('.')[-1]
    if wrapper_type == 'AmpOptimWrapper':
        print_log(
            'AMP is already enabled in the config.',
            logger='current',
            level=logging.WARNING)
        return
    if wrapper_type == 'MultiTaskAmpOptimWrapper':
        return
    amp_types = dict(
        OptimWrapper='AmpOptimWrapper',
        MultiTaskOptimWrapper='MultiTaskAmpOptimWrapper')
    if wrapper_type not in amp_types:
        raise RuntimeError('--amp only replaces OptimWrapper or '
                           f'MultiTaskOptimWrapper, not {wrapper.type!r}')
    wrapper.type = amp_types[wrapper_type]
    wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config) -> None:
    """Turn on the Runner's linear scaling of the learning rate.

    Raises:
        RuntimeError: If the config has no ``auto_scale_lr.base_batch_size``.
    """
    if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
        raise RuntimeError(
            '--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) in '
            'the config: the total batch size its learning rate is for')
    cfg.auto_scale_lr.enable = True


def apply_train_args(cfg: Config, args: argparse.Namespace) -> None:
    """Merge ``--amp``, ``--auto-scale-lr``, ``--resume`` and
    ``--accept-recipe-change`` into ``cfg``.

    ``--resume`` alone resumes the latest checkpoint of the work dir;
    ``--resume PATH`` resumes from ``PATH``.

    Args:
        cfg (Config): The config, modified in place.
        args (argparse.Namespace): The arguments of ``tools/train.py``.
    """
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if getattr(args, 'accept_recipe_change', False):
        cfg[ACCEPT_KEY] = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume


def _find_visualization_hook(cfg: Config) -> Optional[dict]:
    """The config of the visualization hook in ``default_hooks`` or
    ``custom_hooks``, or None."""
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is not None:
        return hook
    for hook in cfg.get('custom_hooks') or []:
        hook_type = hook.get('type')
        if isinstance(hook_type, str) and \
                hook_type.endswith('VisualizationHook'):
            return hook
    return None


def enable_visualization(cfg: Config,
                         show_dir: str,
                         interval: int = 1) -> None:
    """Make the visualization hook draw test results into ``show_dir``.

    The hooks of the libraries differ; they are told apart by their
    arguments:

    - mmpretrain ``VisualizationHook``: ``enable`` and ``out_dir``.
    - mmdet ``DetVisualizationHook``: ``draw`` and ``test_out_dir``.
    - mmseg ``SegVisualizationHook``: ``draw``; it writes through the
      visualizer's backends, so the visualizer's ``save_dir`` is set.

    ``show_dir`` is made absolute, so images land in it whatever the
    library (mmdet would otherwise put it under the work dir).

    Args:
        cfg (Config): The config, modified in place.
        show_dir (str): Directory for the drawn images.
        interval (int): Draw every ``interval``-th sample or batch (mmpretrain
            and mmseg hooks). Defaults to 1.

    Raises:
        RuntimeError: If the config has no visualization hook, or one whose
            arguments are none of the above.
    """
    hook = _find_visualization_hook(cfg)
    if hook is None:
        raise RuntimeError(
            '--show-dir needs a visualization hook in the config, e.g. '
            "default_hooks.visualization=dict(type='mmdet."
            "DetVisualizationHook') (or mmseg.SegVisualizationHook, "
            'mmpretrain.VisualizationHook)')
    hook_cls = get_type(HOOKS, hook, cfg.get('default_scope'))
    params = inspect.signature(hook_cls).parameters if hook_cls else {}
    show_dir = osp.abspath(show_dir)
    if 'enable' in params and 'out_dir' in params:
        hook.update(enable=True, out_dir=show_dir, interval=interval)
    elif 'draw' in params and 'test_out_dir' in params:
        hook.update(draw=True, test_out_dir=show_dir)
    elif 'draw' in params:
        hook.update(draw=True, interval=interval)
        cfg.visualizer.save_dir = show_dir
    else:
        raise RuntimeError(
            f'--show-dir: unsupported visualization hook {hook.type!r}')


def apply_test_args(cfg: Config, args: argparse.Namespace) -> None:
    """Merge ``checkpoint``, ``--out`` and ``--show-dir`` into ``cfg``.

    Args:
        cfg (Config): The config, modified in place.
        args (argparse.Namespace): The arguments of ``tools/test.py``.

    Raises:
        ValueError: ``--out`` is not a pickle file.
        RuntimeError: ``--show-dir`` with a test evaluator per task.
    """
    cfg.load_from = args.checkpoint
    if args.out is not None and \
            not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl or .pickle file: {args.out}')
    if args.show_dir is not None:
        if is_task_dict(cfg.get('test_evaluator')):
            # A visualization hook of mmdet, mmseg or mmpretrain draws the
            # predictions of its own task only.
            raise RuntimeError(
                '--show-dir is not supported for multi-task configs (a '
                'test_evaluator per task) yet')
        enable_visualization(cfg, args.show_dir, args.interval)


def task_out_file(out_file: str, task: str) -> str:
    """``out_file`` with the task as suffix: results.pkl -> results_cls.pkl.
    """
    root, ext = osp.splitext(out_file)
    return f'{root}_{task}{ext}'


def add_dump_results(runner: Runner, out_file: str) -> None:
    """Dump the test predictions into ``out_file`` (a pickle).

    With a test loop that has an evaluator per task
    (``MultiTaskTestLoop``), each task's predictions go to a file of their
    own, named by :func:`task_out_file`.

    Args:
        runner (Runner): The runner before ``runner.test()``.
        out_file (str): A ``.pkl`` file.
    """
    evaluators = getattr(runner.test_loop, 'evaluators', None)
    if evaluators is None:
        evaluators = {None: runner.test_evaluator}
    for task, evaluator in evaluators.items():
        path = out_file if task is None else task_out_file(out_file, task)
        evaluator.metrics.append(DumpResults(out_file_path=path))
