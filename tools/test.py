"""Test a checkpoint of an mtl_pvt config with MMEngine's Runner."""
import argparse

from mtl_pvt.apis import build_runner
from mtl_pvt.engine.cli import (add_common_args, add_dump_results,
                                apply_test_args, export_local_rank,
                                load_config)
from mtl_pvt.engine.model_wrappers import destroy_process_group
from mtl_pvt.utils import register_all_modules
from mtl_pvt.utils.tool_args import check_path_args, show_warnings_once


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the predictions into this pickle (.pkl) file')
    parser.add_argument(
        '--show-dir',
        help='draw the predictions into this directory (needs the '
        "config's visualization hook)")
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='with --show-dir, draw every n-th sample (mmpretrain) or '
        'batch (mmseg); mmdet draws all')
    add_common_args(parser)
    args = parser.parse_args()
    check_path_args(
        parser,
        config=args.config,
        checkpoint=args.checkpoint,
        order='CONFIG CHECKPOINT')
    export_local_rank(args)
    return args


def main() -> None:
    show_warnings_once()
    args = parse_args()
    # The Runner sets the default scope from the config.
    register_all_modules(init_default_scope=False)
    cfg = load_config(args)
    apply_test_args(cfg, args)
    # bad paths or types stop before the Runner creates the work dir
    runner = build_runner(cfg, 'test')
    if args.out is not None:
        add_dump_results(runner, args.out)
    runner.test()
    destroy_process_group()


if __name__ == '__main__':
    main()
