"""benchmarks/gpu_check.py end to end on the CPU (``--cpu --tiny``), so
that a short GPU window is not spent finding a typo in it."""
import json
import os.path as osp
import subprocess
import sys

from mtl_pvt.testing.demo_runs import tool_env
from mtl_pvt.testing.tiny_mtl import REPO

SCRIPT = osp.join(REPO, 'benchmarks', 'gpu_check.py')


def test_every_section_runs_on_the_cpu(tmp_path):
    out = tmp_path / 'check.json'
    proc = subprocess.run([
        sys.executable, SCRIPT, '--cpu', '--tiny', '--demo-iters', '2',
        '--out',
        str(out)
    ],
                          capture_output=True,
                          text=True,
                          env=tool_env(),
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert 'errors' not in results
    assert set(results['seconds']) == {'demo', 'step', 'nccl'}
    for run in ('full_share/fp32', 'no_share/fp32'):
        entry = results['demo'][run]
        assert entry['returncode'] == 0 and entry['iters'] == 2
        assert entry['losses_finite'] and entry['s_per_iter'] > 0
    assert 'refuses the CPU' in results['demo']['amp']
    step = results['step']
    for precision in ('fp32', 'amp'):
        assert step[precision]['ratio_joint_to_stl_sum'] > 0
        assert set(step[precision]['stl_s']) == {'cls', 'det', 'seg'}
    # full sharing holds one backbone where no-share holds three
    estimate = step['fp32']['estimate_gib']
    assert 0 < estimate['full_share'] < estimate['no_share']
    assert set(
        step['aggregator_step_ratio']) == {'PCGrad', 'UPGrad', 'NashMTL'}
    assert results['nccl'] == dict(results['nccl'], backend='gloo', equal=True)


def test_bring_lists_the_pinned_openmmlab_wheels():
    proc = subprocess.run([sys.executable, SCRIPT, '--bring'],
                          capture_output=True,
                          text=True,
                          env=tool_env())
    assert proc.returncode == 0, proc.stderr
    for pin in ('mmengine==0.10.7', 'mmdet==3.3.0', 'mmsegmentation==1.2.2',
                'mmpretrain==1.2.0', 'mmcv==2.1.0'):
        assert pin in proc.stdout
    assert 'torch==' not in proc.stdout  # the device has its own
