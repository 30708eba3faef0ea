"""Train a model of an mtl_pvt config with MMEngine's Runner."""
import argparse

from mtl_pvt.converters.load_check import check_load_from
from mtl_pvt.engine.cli import (add_common_args, apply_train_args,
                                build_runner, export_local_rank, load_config)
from mtl_pvt.engine.hooks import TrainingPreempted
from mtl_pvt.engine.model_wrappers import (configure_task_by_task,
                                           configure_unused_parameters,
                                           destroy_process_group,
                                           setup_cpu_distributed)
from mtl_pvt.utils import check_config, register_all_modules
from mtl_pvt.utils.schedules import fit_schedules
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
    # Fail on bad paths or types before the Runner creates the work dir.
    check_config(cfg, stages=('train', 'val'))
    # A short run gets schedules that fit it. A checkpoint that does not fit
    # the model stops the run here, or is converted into the work dir.
    notes = fit_schedules(cfg)
    notes += check_load_from(cfg)
    configure_unused_parameters(cfg)
    configure_task_by_task(cfg)
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    for level, message in notes:  # into the work dir's log
        runner.logger.log(level, message)
    try:
        runner.train()
    except TrainingPreempted:
        # every rank stops here together (PreemptionHook): close the group
        destroy_process_group()
        raise
    destroy_process_group()


if __name__ == '__main__':
    main()
