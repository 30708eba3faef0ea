"""A fingerprint of the project's behaviour, to compare before and after a
refactor that must not change it.

It prints, as JSON: the parameter counts (total, shared, per task path) of
every config under ``configs/mtl``, ``configs/stl`` and ``configs/demo``;
the FLOPs of every task path of the demo configs and of the b0/b2 sharing
configs at the standard input shapes; and a SHA-256 of the weights after a
few demo training iterations (tiny generated data, one sample per task and
step, deterministic) of the full-share, partial-share, no-share and
alternating demo configs; and (``--balancing``) a SHA-256 of the tiny
model's weights after two steps through the optimiser wrapper with every
loss weighting and aggregator, per-task and global clipping, task by task
and AMP's loss scaling (on the CPU). Run it on the same machine before
and after::

    python tools/misc/fingerprint.py --out /tmp/before.json
    # ... the change ...
    python tools/misc/fingerprint.py --out /tmp/after.json
    diff /tmp/before.json /tmp/after.json && echo unchanged
"""
import argparse
import fnmatch
import glob
import hashlib
import json
import os.path as osp
import subprocess
import sys
import tempfile
from typing import List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

TRAINED = ('pvtv2_b0_full_share_demo', 'pvtv2_b0_partial_share_s2_demo',
           'pvtv2_b0_no_share_demo', 'pvtv2_b0_full_share_alternating_demo')
FLOPS_GLOBS = ('configs/demo/*/*.py', 'configs/mtl/pvtv2_b*_share*.py',
               'configs/stl/pvtv2_b[02]_*.py')


def _configs() -> List[str]:
    found = []
    for pattern in ('configs/mtl/*.py', 'configs/stl/*.py',
                    'configs/demo/*/*.py'):
        found += sorted(glob.glob(osp.join(REPO, pattern)))
    return found


def _with_flops(path: str) -> bool:
    rel = osp.relpath(path, REPO)
    return any(fnmatch.fnmatch(rel, p) for p in FLOPS_GLOBS)


def complexity(paths: List[str]) -> dict:
    """Parameters (and FLOPs where chosen) of each config's task paths."""
    from mmengine.config import Config
    from mmengine.registry import MODELS

    from mtl_pvt import register_all_modules
    from mtl_pvt.analysis import complexity_report

    register_all_modules()
    out = {}
    for path in paths:
        cfg = Config.fromfile(path)
        cfg.model.backbone.init_cfg = None
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        stem = osp.splitext(osp.basename(path))[0]
        report = complexity_report(
            model, with_flops=_with_flops(path), name=stem)
        for res in report['tasks'].values():
            res.pop('unsupported_ops', None)
        out[osp.relpath(path, REPO)] = report
        print(
            f'{osp.relpath(path, REPO)}: {report["params_total"]:,}',
            file=sys.stderr)
    return out


def trained_weights(iters: int) -> dict:
    """SHA-256 of each demo config's weights after ``iters`` steps."""
    from mtl_pvt.testing.demo_runs import (demo_config, make_tiny_demo_data,
                                           tiny_options, train_command)
    out = {}
    with tempfile.TemporaryDirectory() as root:
        make_tiny_demo_data(root)
        for name in TRAINED:
            work_dir = osp.join(root, name)
            options = tiny_options(iters)
            subprocess.run(
                train_command(demo_config(name), work_dir, options),
                cwd=root,
                check=True,
                stdout=subprocess.DEVNULL)
            ckpt = torch.load(
                osp.join(work_dir, f'iter_{iters}.pth'),
                map_location='cpu',
                weights_only=False)
            digest = hashlib.sha256()
            for key, value in sorted(ckpt['state_dict'].items()):
                digest.update(key.encode())
                digest.update(value.cpu().contiguous().numpy().tobytes())
            out[name] = dict(
                tensors=len(ckpt['state_dict']), sha256=digest.hexdigest())
            print(f'{name}: {out[name]["sha256"][:16]}', file=sys.stderr)
    return out


# (name, MultiTaskOptimWrapper arguments) of --balancing
BALANCING = [('plain', {})] + [
    (a, dict(aggregator=dict(type=a)))
    for a in ('Sum', 'Mean', 'PCGrad', 'CAGrad', 'MGDA', 'IMTLG', 'NashMTL',
              'AlignedMTL', 'UPGrad')
] + [
    (w, dict(weighting=dict(type=w)))
    for w in ('UncertaintyWeighting', 'DynamicWeightAverage',
              'GeometricLossStrategy', 'GradNorm', 'RandomLossWeighting')
] + [
    ('FAMO', dict(weighting=dict(type='FAMO', variant='next_step'))),
    ('PCGrad+task_clip',
     dict(aggregator=dict(type='PCGrad'), task_clip_grad=dict(max_norm=0.05))),
    ('UW+clip',
     dict(
         weighting=dict(type='UncertaintyWeighting'),
         clip_grad=dict(max_norm=0.05))),
    ('UPGrad+task_by_task',
     dict(aggregator=dict(type='UPGrad'), task_by_task=True)),
    ('stats', dict(stats_interval=1)),
    ('amp+PCGrad', dict(aggregator=dict(type='PCGrad'), amp=True)),
    ('amp+GradNorm', dict(weighting=dict(type='GradNorm'), amp=True)),
]


def balancing_weights(steps: int = 2) -> dict:
    """SHA-256 of the tiny model's weights after ``steps`` steps with each
    method of :data:`BALANCING`."""
    import copy

    from mmengine.optim import build_optim_wrapper

    from mtl_pvt.testing import make_mtl_batch, make_mtl_model
    from mtl_pvt.testing.cpu_amp import cpu_amp
    from mtl_pvt.testing.tiny_mtl import mtl_optim_wrapper_cfg
    start = make_mtl_model(('a', 'b', 'seg'))
    batch = make_mtl_batch()
    out = {}
    for name, method in BALANCING:
        method = copy.deepcopy(method)
        amp = method.pop('amp', False)
        model = copy.deepcopy(start)
        cfg = mtl_optim_wrapper_cfg(amp, **method)
        if amp:
            cfg['loss_scale'] = dict(init_scale=2.**10)
        with cpu_amp(autocast=False):
            wrapper = build_optim_wrapper(model, cfg)
            model.train()
            for i in range(steps):
                torch.manual_seed(i)
                model.train_step(copy.deepcopy(batch), wrapper)
        digest = hashlib.sha256()
        for key, value in sorted(model.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.cpu().contiguous().numpy().tobytes())
        out[name] = digest.hexdigest()
        print(f'{name}: {out[name][:16]}', file=sys.stderr)
    return out


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', help='write the JSON here too')
    parser.add_argument(
        '--iters', type=int, default=3, help='demo training steps')
    parser.add_argument(
        '--no-train', action='store_true', help='complexity only')
    parser.add_argument(
        '--balancing',
        action='store_true',
        help='also the weights after two steps of every balancing method')
    parser.add_argument(
        '--only-balancing',
        action='store_true',
        help='only those (seconds, for a change of the optimiser wrapper)')
    args = parser.parse_args(argv)
    result = {}
    if not args.only_balancing:
        result['complexity'] = complexity(_configs())
        if not args.no_train:
            result['trained'] = trained_weights(args.iters)
    if args.balancing or args.only_balancing:
        result['balancing'] = balancing_weights()
    text = json.dumps(result, indent=1, sort_keys=True)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return result


if __name__ == '__main__':
    main()
