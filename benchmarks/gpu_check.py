"""A prepared device check: what a GPU machine says about mtl_pvt, in one
call of at most 8 minutes.

Sections (each result printed and written to ``--out`` as JSON):

- ``demo``: ``tools/train.py`` on the demo data, the demo study's
  full-share and no-share models, fp32 and ``--amp``, ``--demo-iters``
  iterations each: seconds per iteration, the last losses, the peak GPU
  memory (``memory`` of mmengine's log), non-finite losses.
- ``step``: the PVT v2-b2 models of ``configs/mtl`` (no checkpoint) on
  synthetic batches of the real per-GPU shapes (32 cls crops at 224, 2 det
  images at 1024x1024, about the pixels of 800x1280, 2 seg crops at 512):
  the joint full-share step against the sum of the three single-task steps
  (the no-share model, one task at a time: each is its STL model), fp32
  and AMP; the peak memory of each (``torch.cuda.max_memory_allocated``)
  next to :mod:`mtl_pvt.analysis.memory`'s estimate; the aggregators'
  overhead (PCGrad, UPGrad, Nash-MTL against the plain sum).
- ``nccl``: a one-process NCCL group, an all-reduce on the GPU.

``--cpu --tiny`` runs every section on the CPU (the demo b0 model, small
shapes, a few iterations, gloo, AMP through
:func:`mtl_pvt.testing.cpu_amp.cpu_amp` in bfloat16 for the step section;
``tools/train.py --amp`` refuses the CPU, so the demo section runs fp32
only): the check itself is tested in CI, so a short device window is not
spent on a typo. ``--bring`` prints what a machine with torch and nothing
of OpenMMLab needs brought along (``pip download`` lines of the installed
versions).

Usage::

    python benchmarks/gpu_check.py --out gpu_check.json      # on a GPU
    python benchmarks/gpu_check.py --cpu --tiny --out check.json
    python benchmarks/gpu_check.py --bring
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mtl_pvt.testing import demo_runs  # noqa: E402

TASKS = ('cls', 'det', 'seg')
# per GPU: configs/_base_/datasets/mtl_in1k_coco_ade20k.py's batch sizes
REAL = dict(
    config='configs/mtl/pvtv2_b2_{}.py',
    batch=dict(cls=32, det=2, seg=2),
    size=dict(cls=224, det=1024, seg=512),
    classes=dict(cls=1000, det=80, seg=150))
TINY = dict(
    config='configs/demo/mtl/pvtv2_b0_{}_demo.py',
    batch=dict(cls=2, det=1, seg=1),
    size=dict(cls=64, det=128, seg=128),
    classes=dict(cls=4, det=4, seg=5))
AGGREGATORS = ('PCGrad', 'UPGrad', 'NashMTL')
# What a machine with torch (and nothing of OpenMMLab) needs: the pinned
# OpenMMLab packages and every package they pull in (wheels for the
# device's Python); mmcv is compiled there against that machine's torch
# (make install GPU=1).
BRING = ('mmengine', 'mmdet', 'mmsegmentation', 'mmpretrain')


def device_of(args) -> torch.device:
    if args.cpu:
        return torch.device('cpu')
    if not torch.cuda.is_available():
        sys.exit('gpu_check.py: no GPU is visible (use --cpu --tiny for a '
                 'dry run on the CPU)')
    return torch.device('cuda')


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


# ------------------------------------------------------------------ demo
def _last_scalars(work_dir):
    """mmengine's scalars.json of the run: the last record with a loss,
    the median of 'time' and the largest 'memory'."""
    records = []
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
    train = [r for r in records if 'loss' in r]
    times = [r['time'] for r in train if 'time' in r]
    return dict(
        iters=len(train),
        loss_last=train[-1]['loss'] if train else None,
        losses_finite=all(
            isinstance(r['loss'], (int, float)) and r['loss'] == r['loss']
            and abs(r['loss']) != float('inf') for r in train),
        s_per_iter=statistics.median(times[1:] or times) if times else None,
        memory_mb=max((r.get('memory', 0) for r in train), default=None))


def check_demo(args, root, results):
    iters = args.demo_iters
    if args.tiny:
        data_root = demo_runs.make_tiny_demo_data(osp.join(root, 'demo'))
        options = demo_runs.tiny_options(max_iters=iters)
    else:
        data_root = REPO
        if not osp.isdir(osp.join(REPO, 'data', 'demo')):
            subprocess.run([
                sys.executable, 'tools/misc/make_demo_data.py', '--out',
                'data/demo'
            ],
                           cwd=REPO,
                           check=True)
        options = [
            f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.logger.interval=10', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None',
            'default_hooks.checkpoint.save_best=None'
        ]
    precisions = ['fp32'] if args.cpu else ['fp32', 'amp']
    out = results.setdefault('demo', {})
    for arm in ('full_share', 'no_share'):
        config = osp.join(REPO, TINY['config'].format(arm))
        for precision in precisions:
            work_dir = osp.join(root, f'{arm}_{precision}')
            extra = ['--amp'] if precision == 'amp' else []
            start = time.perf_counter()
            proc = subprocess.run(
                demo_runs.train_command(config, work_dir, options, *extra),
                cwd=data_root,
                env=demo_runs.tool_env(),
                capture_output=True,
                text=True)
            entry = dict(
                returncode=proc.returncode,
                wall_s=round(time.perf_counter() - start, 1))
            if proc.returncode == 0:
                entry.update(_last_scalars(work_dir))
            else:
                entry['error'] = proc.stderr[-2000:]
            out[f'{arm}/{precision}'] = entry
            print(f'demo {arm} {precision}: {entry}', flush=True)
    if args.cpu:
        out['amp'] = ('not run: tools/train.py --amp refuses the CPU '
                      '(mmengine AmpOptimWrapper); see the step section')


# ------------------------------------------------------------------ step
def _build(spec, arm, device):
    from mtl_pvt.apis import build_model_from_config

    # the constructors' weights: timing and memory do not need trained ones
    model = build_model_from_config(osp.join(REPO, spec['config'].format(arm)))
    return model.to(device).train()


def _batch(spec, tasks, seed=0):
    from mtl_pvt.testing import task_batch
    batch = dict(inputs=[], data_samples=[])
    for i, task in enumerate(tasks):
        part = task_batch(
            [task] * spec['batch'][task],
            seed=seed + i,
            size=spec['size'][task],
            num_classes=spec['classes'][task])
        batch['inputs'] += part['inputs']
        batch['data_samples'] += part['data_samples']
    return batch


def _wrapper(model, amp, device, aggregator=None):
    from mmengine.optim import build_optim_wrapper

    from mtl_pvt.testing.tiny_mtl import mtl_optim_wrapper_cfg
    cfg = mtl_optim_wrapper_cfg(amp, lr=1e-4)
    if amp:
        cfg['dtype'] = 'bfloat16' if device.type == 'cpu' else 'float16'
    if aggregator:
        cfg['aggregator'] = dict(type=aggregator)
    return build_optim_wrapper(model, cfg)


def _time_steps(model, wrapper, batch, reps, device):
    """Median seconds of ``reps`` steps after one warm-up; peak memory."""
    times = []
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for rep in range(reps + 1):
        data = copy.deepcopy(batch)
        sync(device)
        start = time.perf_counter()
        model.train_step(data, wrapper)
        sync(device)
        if rep:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == 'cuda' \
        else None
    return statistics.median(times), peak


def _estimate(spec, model, tasks):
    """State + activations measured one image per task, times the batch."""
    from mtl_pvt.analysis import joint_step_memory
    one = dict(spec, batch={t: 1 for t in TASKS})
    return joint_step_memory(model, {t: _batch(one, [t])
                                     for t in tasks}, spec['batch'])['total']


def check_step(args, results):
    from mtl_pvt.testing.cpu_amp import cpu_amp
    device = device_of(args)
    spec = TINY if args.tiny else REAL
    reps = args.reps
    out = results.setdefault('step', dict(shapes=spec))
    joint = _batch(spec, TASKS)
    singles = {t: _batch(spec, [t], seed=10) for t in TASKS}
    gib = 2.**30
    for precision in ('fp32', 'amp'):
        amp = precision == 'amp'
        context = cpu_amp(torch.bfloat16) if amp and args.cpu \
            else nullcontext()
        with context:
            full = _build(spec, 'full_share', device)
            t_joint, m_joint = _time_steps(full, _wrapper(full, amp, device),
                                           joint, reps, device)
            est_joint = _estimate(spec, full, TASKS) if not amp else None
            del full
            none = _build(spec, 'no_share', device)
            t_stl, m_stl = {}, {}
            for task in TASKS:
                t_stl[task], m_stl[task] = _time_steps(
                    none, _wrapper(none, amp, device), singles[task], reps,
                    device)
            est_none = _estimate(spec, none, TASKS) if not amp else None
            t_none, m_none = _time_steps(none, _wrapper(none, amp, device),
                                         joint, reps, device)
            del none
        entry = dict(
            joint_full_share_s=t_joint,
            stl_sum_s=sum(t_stl.values()),
            stl_s=t_stl,
            ratio_joint_to_stl_sum=t_joint / sum(t_stl.values()),
            joint_no_share_s=t_none)
        if device.type == 'cuda':
            entry.update(
                peak_gib=dict(
                    full_share=m_joint / gib,
                    no_share=m_none / gib,
                    **{
                        f'stl_{t}': m / gib
                        for t, m in m_stl.items()
                    }))
        if est_joint is not None:
            entry['estimate_gib'] = dict(
                full_share=est_joint / gib, no_share=est_none / gib)
        out[precision] = entry
        print(f'step {precision}: {json.dumps(entry, indent=1)}', flush=True)
    # the aggregators' own cost, fp32, full sharing
    full = _build(spec, 'full_share', device)
    state = copy.deepcopy(full.state_dict())
    overhead = {}
    base, _ = _time_steps(full, _wrapper(full, False, device), joint, reps,
                          device)
    for name in AGGREGATORS:
        full.load_state_dict(state)
        t, _ = _time_steps(full, _wrapper(full, False, device, name), joint,
                           reps, device)
        overhead[name] = t / base
    out['aggregator_step_ratio'] = overhead
    print(f'aggregators (step time / plain sum): {overhead}', flush=True)


# ------------------------------------------------------------------ nccl
def check_nccl(args, results):
    import torch.distributed as dist
    device = device_of(args)
    backend = 'gloo' if args.cpu else 'nccl'
    with tempfile.TemporaryDirectory() as folder:
        dist.init_process_group(
            backend,
            init_method=f'file://{osp.join(folder, "store")}',
            rank=0,
            world_size=1)
        try:
            x = torch.arange(1 << 20, dtype=torch.float32, device=device)
            expected = x.clone()
            sync(device)
            start = time.perf_counter()
            dist.all_reduce(x)
            sync(device)
            entry = dict(
                backend=backend,
                equal=bool(torch.equal(x, expected)),
                all_reduce_4mib_ms=(time.perf_counter() - start) * 1e3)
            if backend == 'nccl':
                entry['nccl_version'] = '.'.join(
                    map(str, torch.cuda.nccl.version()))
        finally:
            dist.destroy_process_group()
    results['nccl'] = entry
    print(f'nccl: {entry}', flush=True)


# ------------------------------------------------------------------ bring
def bring() -> str:
    """The ``pip download`` commands for a machine with torch only."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    pins, todo, seen = {}, list(BRING), set()
    skip = re.compile(r'^(torch|torchvision|nvidia-|triton|mmcv$)', re.I)
    while todo:
        name = todo.pop()
        key = name.lower().replace('_', '-')
        if key in seen or skip.match(key):
            continue
        seen.add(key)
        try:
            dist = distribution(name)
        except Exception:
            continue
        pins[dist.metadata['Name']] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({'extra': ''}):
                todo.append(req.name)
    lines = ' \\\n    '.join(f'{n}=={v}' for n, v in sorted(pins.items()))
    return ('# on a machine with the registry, for the device (same Python):\n'
            f'pip download --no-deps -d wheels \\\n    {lines}\n'
            '# mmcv: built there against its torch (make install GPU=1 '
            'TORCH_CUDA_ARCH_LIST=9.0), or brought built for exactly that '
            'torch and CUDA\n'
            'pip download --no-deps --no-binary :all: -d wheels mmcv==2.1.0')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cpu', action='store_true', help='run on the CPU')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='demo-size model and shapes, a few iterations')
    parser.add_argument('--sections', default='demo,step,nccl')
    parser.add_argument('--demo-iters', type=int, default=None)
    parser.add_argument('--reps', type=int, default=None)
    parser.add_argument('--out', help='write the results to this JSON file')
    parser.add_argument(
        '--bring', action='store_true', help='print what to bring; exit')
    args = parser.parse_args(argv)
    if args.bring:
        print(bring())
        return 0
    if args.demo_iters is None:
        args.demo_iters = 3 if args.tiny else 200
    if args.reps is None:
        args.reps = 1 if args.tiny else 5
    from mtl_pvt import register_all_modules
    register_all_modules(init_default_scope=False)
    results = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=torch.cuda.get_device_name() if not args.cpu else 'cpu',
        tiny=args.tiny,
        seconds={})
    sections = dict(
        demo=lambda: check_demo(args, root, results),
        step=lambda: check_step(args, results),
        nccl=lambda: check_nccl(args, results))
    with tempfile.TemporaryDirectory() as root:
        for name in args.sections.split(','):
            start = time.perf_counter()
            try:
                sections[name]()
            except Exception as err:  # one failed section, the others run
                results.setdefault('errors', {})[name] = repr(err)
                print(f'{name}: FAILED {err!r}', flush=True)
            results['seconds'][name] = round(time.perf_counter() - start, 1)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    return 1 if results.get('errors') else 0


if __name__ == '__main__':
    sys.exit(main())
