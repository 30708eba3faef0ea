"""Inference time and peak memory: one b2 multi-task model against three.

For one 512 x 512 image and the three tasks (cls, det, seg), times the
forward path of ``MultiTaskInferencer`` on the PVT v2-b2 multi-task model
(``predict_tasks``: each stage copy once, then each task model's own
``predict()``) against the three b2 single-task models
(``configs/stl/pvtv2_b2_{cls_in1k,retinanet_coco,semfpn_ade20k}.py``), each
running its ``predict()`` on the same preprocessed image with the same
weights (random, copied from the multi-task model). The backbones alone are
timed too (``forward_tasks`` once against the three plain backbones), which
splits the time into backbone and heads. Full sharing (``share_stages=4``)
and partial sharing (``share_stages=2``) are measured; repetitions alternate
between the variants, and the figures are medians. FLOPs of the stage
copies and of each task's necks and heads (MMEngine's ``FlopAnalyzer``)
give the compute-bound speed-up for comparison.

Peak memory is measured in a fresh subprocess per variant (model(s) built,
one warm-up inference, then one measured inference): on the CPU, the peak
resident set size (``VmHWM`` of ``/proc/self/status``, reset before the
measured inference through ``/proc/self/clear_refs``), which counts the
weights, the libraries and the activations; on CUDA,
``torch.cuda.max_memory_allocated``.

Usage: python benchmarks/mtl_inference.py [--reps 5] [--size 512]
           [--device cpu] [--threads N] [--skip-flops] [--skip-memory]
On a CPU shared with other jobs, ``--threads 1`` gives the steadiest
figures.
"""
import argparse
import copy
import gc
import json
import logging
import os.path as osp
import statistics
import subprocess
import sys
import time
import warnings

import mmcv
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import MODELS

from mtl_pvt.analysis.complexity import TaskPath
from mtl_pvt.apis import MultiTaskInferencer
from mtl_pvt.demo import demo_scene

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = ['cls', 'det', 'seg']
MTL_CONFIGS = {
    4: 'configs/mtl/pvtv2_b2_full_share.py',
    2: 'configs/mtl/pvtv2_b2_partial_share_s2.py',
}
STL_CONFIGS = dict(
    cls='configs/stl/pvtv2_b2_cls_in1k.py',
    det='configs/stl/pvtv2_b2_retinanet_coco.py',
    seg='configs/stl/pvtv2_b2_semfpn_ade20k.py')


def build_mtl(share_stages, size, device):
    """The inferencer of a b2 multi-task model, randomly initialised (no
    download), resizing images to ``size`` x ``size``."""
    cfg = Config.fromfile(osp.join(REPO, MTL_CONFIGS[share_stages]))
    cfg.model.backbone.init_cfg = None
    inferencer = MultiTaskInferencer(
        cfg, device=device, scale=(size, size), show_progress=False)
    torch.manual_seed(0)
    inferencer.model.init_weights()
    return inferencer


def build_stl(task, device):
    """The b2 STL model of ``task``, randomly initialised as the library
    initialises it (its backbone's ``init_cfg``, a download, dropped)."""
    cfg = Config.fromfile(osp.join(REPO, STL_CONFIGS[task]))
    cfg.model.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    torch.manual_seed(0)
    model.init_weights()
    return model.to(device).eval()


def copy_weights(mtl, stl):
    """Load each task's path of the multi-task model into its STL model."""
    state = mtl.state_dict()
    backbone = {
        k[len('backbone.'):]: v
        for k, v in state.items() if k.startswith('backbone.')
    }
    for task, model in stl.items():
        prefix = f'tasks.{task}.'
        weights = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        plain = mtl.backbone.shared_to_plain(backbone, task)
        weights.update({'backbone.' + k: v for k, v in plain.items()})
        model.load_state_dict(weights)


def bench_image(size):
    """A generated demo scene (BGR) enlarged to ``size`` x ``size``."""
    rgb = demo_scene(0, 'coco/val2017', 0)['image']
    return mmcv.imresize(rgb[..., ::-1], (size, size))


def timed(fn, device):
    """Seconds that ``fn()`` takes."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def runners(inferencer, stl, data):
    """The four timed variants on the packed ``data``."""
    x, samples = data['inputs'], data['data_samples']
    mtl = inferencer.model if inferencer else None

    def mtl_all():
        inferencer.predict_tasks(x, copy.deepcopy(samples), TASKS)

    def stl_all():
        copies = copy.deepcopy(samples)
        for task in TASKS:
            stl[task].predict(x, copies[task])

    def mtl_backbone():
        mtl.backbone.forward_tasks(x, TASKS)

    def stl_backbone():
        for task in TASKS:
            stl[task].backbone(x)

    return dict(
        mtl=mtl_all,
        stl=stl_all,
        mtl_backbone=mtl_backbone,
        stl_backbone=stl_backbone)


@torch.no_grad()
def flop_breakdown(model, x):
    """FLOPs on ``x`` (one multiply-add = one FLOP, as OpenMMLab counts):
    ``stages`` (each stage copy), ``heads`` (each task's neck and heads)
    and ``paths`` (each task's whole path, what its STL model runs)."""
    stages, heads, paths = {}, {}, {}
    for task, task_model in model.tasks.items():
        path = TaskPath(task_model, model.backbone)
        path.set_input_shape(tuple(x.shape[-2:]))
        analyzer = FlopAnalyzer(path, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        by_module = analyzer.by_module()
        for i, (key, _) in enumerate(model.backbone.task_stages(task)):
            name = model.backbone.copy_name(i, key)
            stages[f'{i}.{key}'] = by_module[f'shared.{name}']
        heads[task] = analyzer.total() - analyzer.total('shared')
        paths[task] = analyzer.total()
    return dict(stages=stages, heads=heads, paths=paths)


def report_flops(flops):
    backbone = sum(flops['stages'].values()) / 1e9
    heads = sum(flops['heads'].values()) / 1e9
    stl = sum(flops['paths'].values()) / 1e9
    per_task = ', '.join(f'{t} {v / 1e9:.1f}'
                         for t, v in flops['heads'].items())
    print(f'  GFLOPs: MTL {backbone + heads:.1f} (stage copies {backbone:.1f}'
          f', necks+heads {heads:.1f}: {per_task}); 3 STL {stl:.1f}; '
          f'compute-bound speed-up {stl / (backbone + heads):.2f}x')


@torch.no_grad()
def time_variant(share_stages, stl, args, image):
    """Median seconds of each variant, repetitions interleaved."""
    inferencer = build_mtl(share_stages, args.size, args.device)
    copy_weights(inferencer.model, stl)
    data = inferencer.pack(inferencer.pipeline(image))
    fns = runners(inferencer, stl, data)
    times = {name: [] for name in fns}
    for rep in range(args.reps + 1):  # the first one warms up
        for name, fn in fns.items():
            seconds = timed(fn, args.device)
            if rep:
                times[name].append(seconds)
    # after the timing: the tracer leaves nothing behind that could slow it
    flops = None if args.skip_flops else flop_breakdown(
        inferencer.model, data['inputs'])
    del inferencer
    gc.collect()
    return {name: statistics.median(ts) for name, ts in times.items()}, flops


def num_params(model):
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def measure_memory(variant, args):
    """Peak memory of one inference of ``variant`` ('mtl4', 'mtl2' or
    'stl'), in MiB; run in a fresh process."""
    baseline = proc_status('VmRSS') if args.device == 'cpu' else 0.
    inferencer = build_mtl(4 if variant == 'stl' else int(variant[3:]),
                           args.size, args.device)
    data = inferencer.pack(inferencer.pipeline(bench_image(args.size)))
    if variant == 'stl':
        del inferencer  # it only made the input; its memory is reused
        gc.collect()
        stl = {task: build_stl(task, args.device) for task in TASKS}
        run = runners(None, stl, data)['stl']
        params = sum(num_params(m) for m in stl.values())
    else:
        run = runners(inferencer, None, data)['mtl']
        params = num_params(inferencer.model)
    run()  # warm-up
    gc.collect()
    before = reset_peak(args.device)
    run()
    return dict(
        variant=variant,
        params=params,
        baseline_mib=baseline,
        resident_before_mib=before,
        peak_mib=read_peak(args.device))


def reset_peak(device):
    """Reset the peak counter; returns the memory in use (MiB)."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current resident set size
    return proc_status('VmRSS')


def read_peak(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    return proc_status('VmHWM')


def proc_status(key):
    """A ``kB`` entry of ``/proc/self/status``, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def memory_in_subprocess(variant, args):
    cmd = [
        sys.executable, __file__, '--memory', variant, '--size',
        str(args.size), '--device', args.device
    ]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(share_stages, medians):
    ms = {name: value * 1000 for name, value in medians.items()}
    heads_mtl = ms['mtl'] - ms['mtl_backbone']
    heads_stl = ms['stl'] - ms['stl_backbone']
    print(f'share_stages={share_stages}:\n'
          f'  MTL, 3 tasks, stages shared: {ms["mtl"]:8.1f} ms '
          f'(backbone {ms["mtl_backbone"]:.1f}, heads {heads_mtl:.1f})\n'
          f'  3 STL models:                {ms["stl"]:8.1f} ms '
          f'(backbones {ms["stl_backbone"]:.1f}, heads {heads_stl:.1f})\n'
          f'  speed-up STL / MTL: {ms["stl"] / ms["mtl"]:.2f}x '
          f'(backbone alone {ms["stl_backbone"] / ms["mtl_backbone"]:.2f}x;'
          f' goal >= 2.0x)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--memory', help=argparse.SUPPRESS)
    parser.add_argument(
        '--skip-memory', action='store_true', help='no memory figures')
    parser.add_argument(
        '--skip-flops', action='store_true', help='no FLOP counts')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory:
        print(json.dumps(measure_memory(args.memory, args)))
        return
    image = bench_image(args.size)
    stl = {task: build_stl(task, args.device) for task in TASKS}
    print(f'PVT v2-b2, one {args.size}x{args.size} image, tasks {TASKS}, '
          f'{args.device} ({torch.get_num_threads()} threads), medians of '
          f'{args.reps} interleaved repetitions')
    for share_stages in (4, 2):
        medians, flops = time_variant(share_stages, stl, args, image)
        report(share_stages, medians)
        if flops:
            report_flops(flops)
    if args.skip_memory:
        return
    kind = 'torch.cuda.max_memory_allocated' if args.device.startswith(
        'cuda') else 'peak RSS (VmHWM)'
    print(f'peak memory of one inference, {kind}, fresh process each:')
    for variant in ('mtl4', 'mtl2', 'stl'):
        mem = memory_in_subprocess(variant, args)
        print(f'  {variant:5s} {mem["params"] / 1e6:5.1f} M params: peak '
              f'{mem["peak_mib"]:7.1f} MiB, in use before the inference '
              f'{mem["resident_before_mib"]:7.1f} MiB, after the imports '
              f'{mem["baseline_mib"]:7.1f} MiB')


if __name__ == '__main__':
    main()
