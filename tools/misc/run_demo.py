"""Run the demo study: STL baselines and MTL models on the demo data.

Generates the demo data, trains and tests the three single-task demo
baselines and the multi-task demo models (full, partial and no sharing,
and full sharing balanced by uncertainty weighting and by PCGrad)
with tools/train.py and tools/test.py. The full-sharing run measures the
per-stage task affinity (TaskAffinityHook); tools/analysis_tools/
suggest_branching.py turns it into a stage_groups tree, which is trained
and tested too unless it is one of the hand-picked sharings. Then it
writes the report of
tools/analysis_tools/mtl_report.py to ``work_dirs/demo_study/``. A run whose
test already finished is skipped, so an interrupted study resumes where it
stopped (``--force`` reruns everything).

Usage: python tools/misc/run_demo.py [--out work_dirs/demo_study] [--force]
       [--runs stl_cls stl_det stl_seg mtl_full_share mtl_suggested]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mtl_pvt.models.backbones.shared_pvtv2 import share_stages_groups

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = 'configs/demo'
# (group, name, config): STL runs are named by task, MTL runs by sharing
RUNS = [
    ('stl', 'cls', f'{DEMO}/stl/pvtv2_b0_cls_demo.py'),
    ('stl', 'det', f'{DEMO}/stl/pvtv2_b0_retinanet_demo.py'),
    ('stl', 'seg', f'{DEMO}/stl/pvtv2_b0_semfpn_demo.py'),
    # full sharing, its per-stage task affinity measured (same training)
    ('mtl', 'full_share', f'{DEMO}/mtl/pvtv2_b0_full_share_affinity_demo.py'),
    ('mtl', 'partial_share_s2',
     f'{DEMO}/mtl/pvtv2_b0_partial_share_s2_demo.py'),
    ('mtl', 'no_share', f'{DEMO}/mtl/pvtv2_b0_no_share_demo.py'),
    # full sharing balanced by a loss weighting and by a gradient aggregator
    ('mtl', 'full_share_uw', f'{DEMO}/mtl/pvtv2_b0_full_share_uw_demo.py'),
    ('mtl', 'full_share_pcgrad',
     f'{DEMO}/mtl/pvtv2_b0_full_share_pcgrad_demo.py'),
]
# the hand-picked sharings: shared leading stages
SHARE_STAGES = dict(full_share=4, partial_share_s2=2, no_share=0)
TASKS = ['cls', 'det', 'seg']
# the run whose affinities give the suggested tree, and the suggestion
MEASURED = 'full_share'
SUGGESTED = 'suggested'
# the demo images' sizes, for the FLOPs of the report
SHAPES = ['cls=64', 'det=128', 'seg=128']
DONE = 'demo_done.json'  # written when a run's test has finished


def run(cmd, log_path):
    """Run ``cmd``, keep its output in ``log_path``, echo the progress."""
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True)
        for line in process.stdout:
            log.write(line)
            if any(k in line for k in ('(train)', '(val)', '(test)')):
                print('    ' + line.split(' - ')[-1].strip()[:150])
        if process.wait() != 0:
            raise SystemExit(f'failed: {" ".join(cmd)}\nsee {log_path}')


def train_and_test(config, work_dir, step):
    """Train ``config`` in ``work_dir`` (absolute), then test its last
    checkpoint."""
    python = sys.executable
    os.makedirs(work_dir, exist_ok=True)
    print(f'[{step}] train {config}', flush=True)
    run([python, 'tools/train.py', config, '--work-dir', work_dir],
        osp.join(work_dir, 'train.out'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    print(f'[{step}] test {checkpoint}', flush=True)
    run([python, 'tools/test.py', config, checkpoint, '--work-dir', work_dir],
        osp.join(work_dir, 'test.out'))
    return checkpoint


def main(argv=None):

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/demo_study')
    parser.add_argument('--force', action='store_true')
    names = [f'{g}_{n}' for g, n, _ in RUNS] + [f'mtl_{SUGGESTED}']
    parser.add_argument(
        '--runs',
        nargs='+',
        choices=names,
        help='only these runs (and the report of those done); default all')
    args = parser.parse_args(argv)
    wanted = set(args.runs or names)
    start = time.time()
    subprocess.run(
        [sys.executable, 'tools/misc/make_demo_data.py', '--out', 'data/demo'],
        cwd=REPO,
        check=True)
    dirs = {}
    total = len(RUNS) + 1
    for index, (group, name, config) in enumerate(RUNS, 1):
        work_dir = osp.join(args.out, f'{group}_{name}')
        dirs[group, name] = work_dir
        step = f'{index}/{total} {group} {name}'
        if f'{group}_{name}' in wanted:
            finish(config, work_dir, step, args.force)
        elif not osp.exists(osp.join(REPO, work_dir, DONE)):
            del dirs[group, name]  # neither run now nor before
    # the loop closed: the tree that the measured affinities suggest
    step = f'{total}/{total} mtl {SUGGESTED}'
    if f'mtl_{SUGGESTED}' not in wanted or ('mtl', MEASURED) not in dirs:
        report(args.out, dirs)
        return
    config, tree = suggest(args.out, dirs['mtl', MEASURED], step)
    same = [
        name for name, k in SHARE_STAGES.items()
        if tree == share_stages_groups(TASKS, k)
    ]
    if same:
        print(f'[{step}] the suggested tree is the {same[0]} run\'s: not '
              'trained again')
    else:
        dirs['mtl', SUGGESTED] = osp.join(args.out, f'mtl_{SUGGESTED}')
        finish(config, dirs['mtl', SUGGESTED], step, args.force)
    report(args.out, dirs)
    print(f'demo study finished in {time.time() - start:.0f} s; report: '
          f'{osp.join(args.out, "report.md")}')


def finish(config, work_dir, step, force):
    """Train and test ``config`` in ``work_dir`` unless done before."""
    done = osp.join(REPO, work_dir, DONE)
    if osp.exists(done) and not force:
        print(f'[{step}] finished before, skipped ({done})')
        return
    began = time.time()
    checkpoint = train_and_test(config, osp.join(REPO, work_dir), step)
    os.makedirs(osp.dirname(done), exist_ok=True)
    with open(done, 'w') as f:
        json.dump(
            dict(
                config=config,
                checkpoint=checkpoint,
                seconds=round(time.time() - began)), f)
    print(f'[{step}] done in {time.time() - began:.0f} s', flush=True)


def suggest(out, measured_dir, step):
    """Write the suggested tree's config from the measured run's
    affinities; return its path (relative to the repo) and the tree."""
    config = osp.join(out, 'suggested_branching.py')
    result = osp.join(measured_dir, 'suggested_branching.json')
    measured_config = next(c for _, n, c in RUNS if n == MEASURED)
    print(f'[{step}] suggest a tree from {measured_dir}', flush=True)
    subprocess.run([
        sys.executable, 'tools/analysis_tools/suggest_branching.py',
        measured_config, measured_dir, '--out', config, '--json', result
    ],
                   cwd=REPO,
                   check=True)
    with open(osp.join(REPO, result)) as f:
        return config, json.load(f)['stage_groups']


def report(out, dirs):
    """Write the STL-vs-MTL report of all runs into ``out``."""

    def listing(group):
        return [f'{name}={d}' for (g, name), d in dirs.items() if g == group]

    subprocess.run([
        sys.executable, 'tools/analysis_tools/mtl_report.py', '--stl',
        *listing('stl'), '--mtl', *listing('mtl'), '--shape', *SHAPES, '--out',
        out
    ],
                   cwd=REPO,
                   check=True)
    with open(osp.join(REPO, out, 'report.md')) as f:
        print(f.read())


if __name__ == '__main__':
    main()
