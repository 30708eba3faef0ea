"""tools/study.py --launcher slurm on a real one-node Slurm cluster
(``mtl_pvt.testing.slurm_cluster``; skipped with the reason where Slurm
cannot run here): CPU jobs, and a job signalled ahead of its end
(``scancel --signal=USR1``, what ``--signal=USR1@120`` sends before a time
limit) saves a checkpoint, is requeued, resumes and ends with the weights
of an uninterrupted run; the study then runs to its report.
"""
import os
import re
import sys
import time

import pytest
import torch
from test_study_tool import NO_SHARE, TINY, tool, write_study

from mtl_pvt.study import load_study, plan_runs
from mtl_pvt.study.plan import run_config
from mtl_pvt.testing.demo_runs import load_weights, train_command
from mtl_pvt.testing.slurm_cluster import SlurmCluster, unavailable

MAX_ITERS = 12
# the tiny recipe of classification and detection, 12 deterministic
# iterations, the checkpoint at the end
RECIPE = {
    **{
        k: v
        for k, v in TINY.items() if '.seg' not in k
    }, 'train_cfg.max_iters': MAX_ITERS,
    'default_hooks.checkpoint.interval': MAX_ITERS,
    'randomness.deterministic': True
}

# The no-share demo with classification and detection only: the report
# pairs each task of an arm with its matched STL run, so two tasks keep the
# study at three jobs.
CLS_DET = '''_base_ = [{base!r}]
_tasks = ('cls', 'det')
model = dict(
    tasks=dict(_delete_=True, cls=_base_.cls_model, det=_base_.det_model),
    loss_weights=dict(_delete_=True, cls=1., det=1.))
train_dataloader = dict(
    batch_sampler=dict(batch_sizes=dict(_delete_=True, cls=1, det=1)),
    dataset=dict(datasets={{
        '_delete_': True,
        **{{t: _base_[f'{{t}}_train_dataloader'].dataset for t in _tasks}}
    }}))
test_dataloader = {{
    '_delete_': True,
    **{{t: _base_[f'{{t}}_test_dataloader'] for t in _tasks}}
}}
test_evaluator = {{
    '_delete_': True,
    **{{t: _base_[f'{{t}}_test_evaluator'] for t in _tasks}}
}}
test_cfg = dict(
    _delete_=True,
    type='MultiTaskTestLoop',
    delta_m={{t: _base_.delta_m[t] for t in _tasks}})
'''


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    why = unavailable()
    if why:
        pytest.skip(why)
    with SlurmCluster(str(tmp_path_factory.mktemp('slurm'))) as cluster:
        yield cluster


def cls_det_config(root):
    path = root / 'cls_det.py'
    path.write_text(CLS_DET.format(base=NO_SHARE))
    return str(path)


def wait_for(what, condition, timeout, cluster):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f'{what}: not after {timeout} s\n{cluster.logs()}')


def read(path):
    return path.read_text() if path.is_file() else ''


def test_a_preempted_job_requeues_resumes_and_the_study_reports(
        cluster, tiny_demo_root, tmp_path, monkeypatch, train_fork_server,
        plain_config_text):
    monkeypatch.chdir(tiny_demo_root)
    monkeypatch.setenv('SLURM_CONF', cluster.conf)
    monkeypatch.setenv('PYTHON', sys.executable)
    # the jobs' threads, as the fork server's runs (sbatch passes the env)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    study = write_study(
        tmp_path,
        arms=dict(
            no_share=dict(config=cls_det_config(tmp_path), overrides=RECIPE)))
    # one job at a time: the node's CPUs each (and gloo's one port)
    jobs = {
        name: job
        for (name, _), job in tool().main([
            'run', study, '--launcher', 'slurm', '--partition',
            cluster.partition, '--gpus', '1', '--gpus-per-node', '0',
            '--cpus-per-task',
            str(os.cpu_count()), '--requeue'
        ]).items()
    }
    assert list(jobs) == ['no_share', 'stl_cls', 'stl_det']
    job = jobs['no_share']
    run = tmp_path / 'wd' / 'no_share' / 'seed_0'
    out = run / f'slurm-{job}.out'
    wait_for(
        'iteration 3 of the arm',
        lambda: re.search(rf'Iter\(train\) \[\s*3/{MAX_ITERS}\]', read(out)),
        300, cluster)
    cluster.run('scancel', '--signal=USR1', job)
    # Slurm holds a requeued job for 120 s; start it now
    wait_for(
        'the requeue', lambda: cluster.job_state(job)['Restarts'] != '0' and
        cluster.job_state(job)['JobState'] == 'PENDING', 120, cluster)
    cluster.run('scontrol', 'update', f'jobid={job}', 'starttime=now')
    runs = [tmp_path / 'wd' / name / 'seed_0' for name in jobs]
    wait_for('the runs finished', lambda: all(
        (r / 'study_run.json').is_file() for r in runs), 400, cluster)

    log = read(out)
    stopped = re.search(
        r'SIGUSR1 received: training stopped after iteration (\d+); resume '
        rf'from {re.escape(str(run))}/iter_(\d+)\.pth', log)
    assert stopped and stopped.group(1) == stopped.group(2), log[-3000:]
    assert 3 <= int(stopped.group(1)) < MAX_ITERS
    assert f'requeueing job {job}' in log
    assert f'Moved the batch sampler to iteration {stopped.group(1)}' in log
    assert not (run / 'preempted.json').exists()  # the resumed run's
    # the weights of an uninterrupted run of the job's config
    arm = [r for r in plan_runs(load_study(study)) if r.name == 'no_share']
    cfg = run_config(load_study(study), arm[0])
    straight = tmp_path / 'straight'
    cfg.dump(str(tmp_path / 'straight.py'))
    code = train_fork_server.run(
        train_command(
            str(tmp_path / 'straight.py'), straight,
            ['default_hooks.logger.interval=1']), os.getcwd(),
        tmp_path / 'straight.log')
    assert code == 0, read(tmp_path / 'straight.log')[-3000:]
    final = f'iter_{MAX_ITERS}.pth'
    expected = load_weights(str(straight / final))
    got = load_weights(str(run / final))
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key

    paths = tool().main(['report', study, '--no-flops'])
    report = read(tmp_path / 'wd' / 'report' / 'report.md')
    assert paths and all(name in report for name in jobs)
