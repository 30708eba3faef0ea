"""Run the demo study (``make demo``) through tools/study.py.

Generates the demo data, then ``tools/study.py run configs/studies/demo.py``
(the full-, partial- and no-share arms and the matched STL baselines, seed
0; finished runs are skipped, an interrupted one resumes), then
tools/analysis_tools/suggest_branching.py on the full-sharing run's
per-stage task affinity (the suggested tree's config is written to
``<work_dir>/suggested_branching.py``; ``configs/studies/demo_balancing.py``
trains it), then ``tools/study.py report`` into ``<work_dir>/report``.

Usage: python tools/misc/run_demo.py [--study configs/studies/demo.py]
"""
import argparse
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDY = 'configs/studies/demo.py'
MEASURED = 'full_share'  # the arm whose affinities suggest a tree


def tool(*args):
    """Run a tool of this repository with this Python; stop on failure."""
    subprocess.run([sys.executable, *args], cwd=REPO, check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--study', default=STUDY)
    args = parser.parse_args(argv)
    from mtl_pvt.study import load_study
    from mtl_pvt.study.plan import run_dir
    start = time.time()
    tool('tools/misc/make_demo_data.py', '--out', 'data/demo')
    study = load_study(osp.join(REPO, args.study))
    tool('tools/study.py', 'run', args.study)
    seed = study.seeds[0]
    measured = run_dir(study, MEASURED, seed)
    config = osp.join(measured, f'{MEASURED}.py')
    tool('tools/analysis_tools/suggest_branching.py', config, measured,
         '--out', osp.join(study.work_dir, 'suggested_branching.py'), '--json',
         osp.join(measured, 'suggested_branching.json'))
    tool('tools/study.py', 'report', args.study)
    report = osp.join(study.work_dir, 'report', 'report.md')
    with open(report) as f:
        print(f.read())
    print(f'demo study finished in {time.time() - start:.0f} s; report: '
          f'{report}')


if __name__ == '__main__':
    main()
