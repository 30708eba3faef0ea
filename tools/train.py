"""Train a model of an mtl_pvt config with MMEngine's Runner."""
import argparse

from mtl_pvt.apis import build_runner
from mtl_pvt.engine.cli import (add_common_args, apply_train_args,
                                export_local_rank, load_config)
from mtl_pvt.engine.hooks import TrainingPreempted
from mtl_pvt.engine.model_wrappers import destroy_process_group
from mtl_pvt.utils import register_all_modules
from mtl_pvt.utils.tool_args import check_path_args, show_warnings_once


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint; without a path, resume from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision training (needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate linearly with the total batch size '
        '(needs auto_scale_lr.base_batch_size in the config)')
    parser.add_argument(
        '--accept-recipe-change',
        action='store_true',
        help='let --resume continue a checkpoint of another recipe (tasks, '
        'batch sizes, sampler, world size, seed, sharing tree); the '
        'differences are logged')
    add_common_args(parser)
    args = parser.parse_args()
    check_path_args(parser, config=args.config, order='CONFIG')
    export_local_rank(args)
    return args


def main() -> None:
    show_warnings_once()
    args = parse_args()
    # The Runner sets the default scope from the config.
    register_all_modules(init_default_scope=False)
    cfg = load_config(args)
    apply_train_args(cfg, args)
    # the config and the checkpoint to load checked before the work dir
    # exists, short schedules fitted, distributed runs set up
    # (mtl_pvt.apis.runner.prepare_config)
    runner = build_runner(cfg, 'train')
    try:
        runner.train()
    except TrainingPreempted:
        # every rank stops here together (PreemptionHook): close the group
        destroy_process_group()
        raise
    destroy_process_group()


if __name__ == '__main__':
    main()
