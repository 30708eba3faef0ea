"""The real study's cost on paper: training FLOPs, GPU-hours and memory.

For ``configs/studies/pvtv2_b2_sharing.py`` (or ``--study``): every arm,
the matched single-task runs and the papers' reference recipes, per seed
and for the whole grid, from

- the forward FLOPs of each task path at its standard input
  (``tools/analysis_tools/get_flops.py``'s count: MMEngine counts one
  multiply-add as one FLOP, so FLOPs here are multiply-adds; the training
  FLOPs below are 2 x 3 x that: a multiply-add is two operations, and the
  backward costs about twice the forward);
- each run's samples: per-GPU batch sizes x GPUs x updates of its config
  (``--gpus``, 8 as in the configs' recipes), epochs x the dataset's size
  for epoch-based reference recipes;
- a stated utilisation of the dense peak of A100 and H100 (SXM): fp32
  (PyTorch's default keeps matmuls in full fp32: PVT v2 is mostly
  matmuls), and AMP (fp16/bf16 tensor cores).

The peak memory per GPU of a joint step is measured here on the CPU at the
real shapes (``--memory``): the state (weights, gradients, AdamW's moments)
plus the activations autograd keeps, measured with one image per task and
scaled by the per-GPU batch (``mtl_pvt.analysis.memory``).

Usage::

    python benchmarks/study_cost.py [--study S] [--gpus 8] [--util 0.3]
        [--memory]
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

# Training-set sizes of the reference recipes' epoch-based schedules.
DATASET_SIZE = dict(cls=1281167, det=117266, seg=20210)
# Dense peaks in TFLOP/s (NVIDIA's data sheets, SXM parts).
PEAK = {
    'A100': dict(fp32=19.5, amp=312.),
    'H100': dict(fp32=66.9, amp=989.4),
}


def task_flops(config):
    """Forward multiply-adds per sample of each task path (standard
    shapes) and the parameters."""
    from mtl_pvt.analysis import complexity_report
    from mtl_pvt.apis import build_model_from_config
    return complexity_report(build_model_from_config(config))


def mtl_samples(cfg, gpus):
    """Per task: samples seen by a multi-task run."""
    sizes = cfg.train_dataloader.batch_sampler.batch_sizes
    iters = cfg.train_cfg.max_iters
    return {t: b * gpus * iters for t, b in sizes.items()}


def stl_samples(cfg, task):
    """Samples of a reference recipe (its own GPUs and schedule)."""
    batch = cfg.train_dataloader.batch_size
    gpus = cfg.auto_scale_lr.base_batch_size // batch
    if 'max_epochs' in cfg.train_cfg:
        return cfg.train_cfg.max_epochs * DATASET_SIZE[task], gpus
    return cfg.train_cfg.max_iters * batch * gpus, gpus


def train_flops(samples, flops):
    return sum(2 * 3 * n * flops[t] for t, n in samples.items())


def gpu_hours(total, util):
    """``util``: mode ('fp32', 'amp') -> the fraction of the peak."""
    return {
        f'{gpu} {mode}': total / (peak * 1e12 * util[mode]) / 3600
        for gpu, peaks in PEAK.items()
        for mode, peak in peaks.items()
    }


def memory(config, batch, sizes):
    """GiB per GPU of a joint step: state + activations (one image per
    task, measured, times the per-GPU batch)."""
    from mtl_pvt.analysis import joint_step_memory
    from mtl_pvt.apis import build_model_from_config
    from mtl_pvt.testing import task_batch
    classes = dict(cls=1000, det=80, seg=150)
    images = {
        task: task_batch([task], size=size, num_classes=classes[task])
        for task, size in sizes.items()
    }
    out = joint_step_memory(build_model_from_config(config), images, batch)
    return {k: v / 2**30 for k, v in out.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--study', default='configs/studies/pvtv2_b2_sharing.py')
    parser.add_argument('--gpus', type=int, default=8)
    parser.add_argument(
        '--util', type=float, default=0.3, help='of the fp32 peak')
    parser.add_argument(
        '--util-amp',
        type=float,
        default=0.15,
        help='of the fp16/bf16 peak (lower: data loading, NMS, the loss and '
        'the optimizer step do not run on tensor cores)')
    parser.add_argument('--memory', action='store_true')
    args = parser.parse_args(argv)
    from mtl_pvt import register_all_modules
    register_all_modules(init_default_scope=False)
    study = Config.fromfile(osp.join(REPO, args.study))
    seeds = len(study.seeds)
    arms = {
        name: Config.fromfile(osp.join(REPO, arm.config))
        for name, arm in study.arms.items()
    }
    # every task path of every arm has its STL model's FLOPs
    # (docs/user_guide/multi_task.md, tests/test_analysis): count them
    # once, on the first arm
    first = next(iter(study.arms.values())).config
    report = task_flops(osp.join(REPO, first))
    flops = {t: v['flops'] for t, v in report['tasks'].items()}
    shapes = {t: v['input_shape'] for t, v in report['tasks'].items()}
    print('forward GMACs per sample: ' +
          ', '.join(f'{t} {f / 1e9:.2f} at {shapes[t][0]}x{shapes[t][1]}'
                    for t, f in flops.items()))
    util = dict(fp32=args.util, amp=args.util_amp)
    print(f'utilisation: {args.util:.0%} of the dense fp32 peak, '
          f'{args.util_amp:.0%} of the fp16/bf16 peak; {args.gpus} GPUs per '
          'multi-task run; training FLOPs = 6 x MACs x samples\n')
    rows = []
    for name, cfg in arms.items():
        samples = mtl_samples(cfg, args.gpus)
        rows.append((f'arm {name}', samples, seeds))
    matched_from = study.stl.get('matched_from')
    if study.stl.get('matched') and matched_from:
        samples = mtl_samples(arms[matched_from], args.gpus)
        for task, n in samples.items():
            rows.append((f'matched STL {task}', {task: n}, seeds))
    for task, path in study.stl.get('reference', {}).items():
        n, gpus = stl_samples(Config.fromfile(osp.join(REPO, path)), task)
        rows.append((f'reference STL {task} ({gpus} GPUs)', {task: n}, seeds))
    header = ['run', 'samples (M)', 'PFLOPs per seed'] + list(
        gpu_hours(1, util)) + ['seeds']
    print('| ' + ' | '.join(header) + ' |')
    print('| --- |' + ' ---: |' * (len(header) - 1))
    grand = 0.
    for name, samples, n_seeds in rows:
        total = train_flops(samples, flops)
        grand += total * n_seeds
        hours = gpu_hours(total, util)
        cells = [
            name, ' + '.join(f'{n / 1e6:.1f}'
                             for n in samples.values()), f'{total / 1e15:,.0f}'
        ] + [f'{h:,.0f}' for h in hours.values()] + [str(n_seeds)]
        print('| ' + ' | '.join(cells) + ' |')
    hours = gpu_hours(grand, util)
    print('| **whole grid** | | ' + f'{grand / 1e15:,.0f} | ' +
          ' | '.join(f'**{h:,.0f}**' for h in hours.values()) + ' | |')
    if args.memory:
        batch = dict(arms[matched_from
                          or first].train_dataloader.batch_sampler.batch_sizes)
        sizes = dict(cls=224, det=1024, seg=512)
        print(f'\npeak memory per GPU of a joint step, fp32, per-GPU batch '
              f'{batch}, det at 1024x1024 (about 800x1280 pixels), measured '
              'on the CPU with one image per task and scaled:')
        for name in ('full_share', 'no_share'):
            if name in study.arms:
                m = memory(
                    osp.join(REPO, study.arms[name].config), batch, sizes)
                print(f'  {name}: ' + ', '.join(f'{k} {v:.2f} GiB'
                                                for k, v in m.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
