"""Write the procedural demo datasets (ImageNet, COCO and ADE20K layouts).

A complete dataset already at ``--out`` with the same seed is kept (pass
``--force`` to redraw it). A new one is drawn into a temporary folder next
to ``--out`` and renamed into place, so that an interrupted run never
leaves a half-written dataset that looks complete.

Example::

    python tools/misc/make_demo_data.py --out data/demo --seed 0
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
import time

from mtl_pvt.demo import make_demo_data, read_demo_manifest


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        argparse.Namespace: ``out``, ``seed`` and ``force``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--out', default='data/demo', help='output folder (data/demo)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (0)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='redraw the data even when a complete dataset is there')
    return parser.parse_args(argv)


def summary_lines(manifest):
    """Human-readable lines: counts per split and image sizes.

    Args:
        manifest (dict): What :func:`make_demo_data` returns or wrote.

    Returns:
        list[str]: One line per dataset.
    """
    lines = []
    for name in ('imagenet', 'coco', 'ade'):
        counts = manifest['counts'][name]
        size = manifest['image_size'][name]
        splits = ', '.join(f'{split} {num}' for split, num in counts.items())
        lines.append(f'  {name} ({manifest["data_roots"][name]}, '
                     f'{size}x{size}): {splits}')
    return lines


def _replace(tmp_dir, out):
    """Move the finished ``tmp_dir`` to ``out``, replacing what is there."""
    if osp.exists(out):
        old = tempfile.mkdtemp(
            prefix=f'.{osp.basename(out)}.old-', dir=osp.dirname(out))
        os.rename(out, osp.join(old, 'data'))
        os.rename(tmp_dir, out)
        shutil.rmtree(old)
    else:
        os.rename(tmp_dir, out)


def generate(out, seed):
    """Draw the datasets into a temporary folder, then rename it to ``out``.

    Args:
        out (str): Target folder.
        seed (int): Random seed.

    Returns:
        dict: The manifest of the new dataset.
    """
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.tmp-', dir=parent)
    try:
        # mkdtemp makes a private (0700) folder; give it the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_dir, 0o777 & ~umask)
        make_demo_data(tmp_dir, seed=seed)
        _replace(tmp_dir, out)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return read_demo_manifest(out)


def main(argv=None):
    """Run the command line; return the exit status.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        int: 0 on success, 1 when ``--out`` holds something else.
    """
    args = parse_args(argv)
    out = osp.abspath(args.out)
    manifest = read_demo_manifest(out)
    if not args.force and manifest is not None:
        if manifest['seed'] == args.seed:
            print(f'Demo data in {out} is complete (seed {args.seed}); '
                  'nothing to do (--force redraws it).')
            return 0
        print(f'Demo data in {out} has seed {manifest["seed"]}; redrawing '
              f'it with seed {args.seed}.')
    elif not args.force and osp.isdir(out) and os.listdir(out):
        print(
            f'{out} exists and is not a complete demo dataset; pass '
            '--force to replace it.',
            file=sys.stderr)
        return 1
    start = time.perf_counter()
    manifest = generate(out, args.seed)
    print(f'Wrote demo data (seed {args.seed}) to {out} in '
          f'{time.perf_counter() - start:.1f} s:')
    print('\n'.join(summary_lines(manifest)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
