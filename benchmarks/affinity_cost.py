"""Cost of one per-stage affinity measurement, in training steps.

On the demo full-share model (b0, the demo task models, the demo MTL
batch sizes), in one run: the median time of a training step (mmengine's
``OptimWrapper``, AdamW, clip_grad 35, as the demo config) and of one
``measure_affinity`` on the same batch (what ``TaskAffinityHook`` runs),
alternating, after a warm-up round. From their ratio, the overhead of the
hook on the demo run (480 iterations) at its interval.

One measurement of T tasks over C shared stage copies costs T
forward-backwards, then T x (C + 1) lookaheads of T forwards each; the
per-stage ones rerun only the stages from the probed one on (the features
below it are reused), which the forward counts below show.

Usage: python benchmarks/affinity_cost.py [--reps 5] [--interval 100]
"""
import argparse
import copy
import math
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.optim import OptimWrapper

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from balancing_cost import BATCH_SIZES, build_model, joint_batch  # noqa: E402

DEMO_ITERS = 480


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument(
        '--interval',
        type=int,
        action='append',
        help='hook intervals to price (default: 100, the affinity demo '
        "config's, and 50, the hook's default)")
    args = parser.parse_args(argv)
    from mtl_pvt.analysis.affinity import measure_affinity
    model = build_model()
    batch = joint_batch()
    wrapper = OptimWrapper(
        torch.optim.AdamW(model.parameters(), lr=1e-3),
        clip_grad=dict(max_norm=35))
    steps, measures = [], []
    for rep in range(args.reps + 1):  # the first round warms up
        start = time.perf_counter()
        model.train_step(copy.deepcopy(batch), wrapper)
        step = time.perf_counter() - start
        start = time.perf_counter()
        record = measure_affinity(model, batch, lambda p: 1e-3, 0, 35.)
        measure = time.perf_counter() - start
        if rep:
            steps.append(step)
            measures.append(measure)
    step, measure = statistics.median(steps), statistics.median(measures)
    ratio = measure / step
    tasks = list(record['loss'])
    copies = [c for c in record['affinity'] if c != 'backbone']
    lookaheads = sum(len(m) for m in record['affinity'].values())
    forwards = sum(
        len(row) for m in record['affinity'].values() for row in m.values())
    print(f'demo full share, batch {BATCH_SIZES}, {args.reps} rounds, '
          f'{torch.get_num_threads()} threads')
    print(f'  training step       {step * 1000:8.0f} ms (median)')
    print(f'  one measurement     {measure * 1000:8.0f} ms (median) = '
          f'{ratio:.2f} training steps')
    print(f'  per measurement: {len(tasks)} forward-backwards, '
          f'{lookaheads} lookaheads ({len(copies)} stage copies + the '
          f'whole backbone), {forwards} forwards after them, of which '
          f'{forwards - len(tasks) ** 2} rerun only the stages from the '
          'probed one on')
    for interval in args.interval or [100, 50]:
        count = math.ceil(DEMO_ITERS / interval)
        overhead = count * ratio / DEMO_ITERS
        print(f'  interval {interval:4d}: {count} measurements in the '
              f'{DEMO_ITERS}-iteration demo, overhead {overhead:.1%} of '
              f'its training time (goal <= 10%: '
              f'{"ok" if overhead <= 0.10 else "MISSED"})')


if __name__ == '__main__':
    main()
