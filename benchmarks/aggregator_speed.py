"""Cost of the gradient aggregators per training step.

For T tasks, prints the time of ``combination(gram)`` (the small T x T
solve, on the CPU in float64) of every aggregator on random conflicting
gradients, and the time of a full ``aggregator(G)`` call (Gram matrix
``G @ G.T`` plus the solve plus ``w @ G``) for gradients of
``--num-params`` parameters (default: the 24.9M of a PVT v2 b2 shared
backbone) in float32 on ``--device``.

Usage: python benchmarks/aggregator_speed.py [--tasks 2 3 5 8]
       [--num-params 24900000] [--device cuda] [--repeat 20]
"""
import argparse
import time

import torch

from mtl_pvt.models.task_utils import (IMTLG, MGDA, AlignedMTL, CAGrad, Mean,
                                       NashMTL, PCGrad, Sum, UPGrad)

AGGREGATORS = [
    Mean, Sum, PCGrad, CAGrad, MGDA, IMTLG, NashMTL, AlignedMTL, UPGrad
]


def conflicting(num_tasks, num_params, dtype, device, seed=0):
    """Random gradients with strong pairwise conflicts."""
    gen = torch.Generator().manual_seed(seed)
    common = torch.randn(num_params, generator=gen)
    signs = torch.tensor([(-1.)**i for i in range(num_tasks)])
    grads = torch.randn(num_tasks, num_params, generator=gen)
    grads += 1.5 * signs[:, None] * common
    return grads.to(device=device, dtype=dtype)


def timed(fn, repeat, device):
    """Mean seconds of ``fn()`` over ``repeat`` calls, after one warm-up."""
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tasks', type=int, nargs='+', default=[2, 3, 5, 8])
    parser.add_argument('--num-params', type=int, default=24_900_000)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeat', type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)

    print('combination(gram), ms (T x T solve, CPU float64)')
    print(f'{"aggregator":12s}' + ''.join(f'{f"T={t}":>10s}'
                                          for t in args.tasks))
    for cls in AGGREGATORS:
        row = []
        for num_tasks in args.tasks:
            grads = conflicting(num_tasks, 64, torch.float64, 'cpu')
            gram = grads @ grads.T
            agg = cls()
            row.append(
                timed(lambda: agg.combination(gram), args.repeat,
                      torch.device('cpu')))
        print(f'{cls.__name__:12s}' + ''.join(f'{1e3 * t:10.2f}' for t in row))

    print(f'\naggregator(G), ms (P={args.num_params:,}, float32, '
          f'{device})')
    print(f'{"aggregator":12s}' + ''.join(f'{f"T={t}":>10s}'
                                          for t in args.tasks))
    grads = {
        t: conflicting(t, args.num_params, torch.float32, device)
        for t in args.tasks
    }
    for cls in AGGREGATORS:
        row = []
        for num_tasks in args.tasks:
            agg = cls()
            row.append(
                timed(lambda: agg(grads[num_tasks]), args.repeat, device))
        print(f'{cls.__name__:12s}' + ''.join(f'{1e3 * t:10.2f}' for t in row))


if __name__ == '__main__':
    main()
