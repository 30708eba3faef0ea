"""Train a model of an mtl_pvt config with MMEngine's Runner."""
import argparse

from mtl_pvt.utils import (add_common_args, apply_train_args, build_runner,
                           check_config, configure_unused_parameters,
                           destroy_process_group, export_local_rank,
                           load_config, register_all_modules,
                           setup_cpu_distributed)


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
    add_common_args(parser)
    args = parser.parse_args()
    export_local_rank(args)
    return args


def main() -> None:
    args = parse_args()
    # The Runner sets the default scope from the config.
    register_all_modules(init_default_scope=False)
    cfg = load_config(args)
    apply_train_args(cfg, args)
    # Fail on bad paths or types before the Runner creates the work dir.
    check_config(cfg, stages=('train', 'val'))
    configure_unused_parameters(cfg)
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    runner.train()
    destroy_process_group()


if __name__ == '__main__':
    main()
