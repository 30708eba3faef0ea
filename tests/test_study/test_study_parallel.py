"""tools/study.py run --jobs N: several runs at once, each with its own
GPUs or CPU cores (mtl_pvt.study.parallel)."""
import json
import os
import os.path as osp
import sys
import threading
import time

import pytest

from mtl_pvt.study import StudyError, launch, load_study, parallel, plan_runs
from mtl_pvt.study.launch import RunFailed
from mtl_pvt.testing.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
AFFINITY = osp.join(DEMO, 'mtl', 'pvtv2_b0_full_share_affinity_demo.py')
NO_SHARE = osp.join(DEMO, 'mtl', 'pvtv2_b0_no_share_demo.py')
TREE = [[['cls', 'det', 'seg']]] * 3 + [[['cls'], ['det', 'seg']]]


def write_study(root):
    """Two seeds of: full_share, a tree suggested from it, no_share, and
    the matched cls baseline: 8 runs."""
    entries = dict(
        work_dir=str(root / 'wd'),
        seeds=[0, 1],
        arms=dict(
            full_share=dict(config=AFFINITY),
            suggested=dict(suggest_from='full_share'),
            no_share=dict(config=NO_SHARE)),
        stl=dict(tasks=['cls']))
    path = root / 'study.py'
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in entries.items()))
    return str(path)


class FakeTools:
    """Records each command with its slot and time; "trains" by writing
    ``last_checkpoint`` after ``seconds``; fails the runs in ``fail``."""

    def __init__(self, seconds=0.15, fail=()):
        self.seconds, self.fail = seconds, set(fail)
        self.calls, self.lock = [], threading.Lock()

    def __call__(self, cmd, log_path, echo=print, slot=None):
        start = time.monotonic()
        script = next(i for i, a in enumerate(cmd) if a.endswith('.py'))
        tool_name = osp.basename(cmd[script])  # after torchrun's options
        if tool_name == 'suggest_branching.py':
            out = cmd[cmd.index('--out') + 1]
            os.makedirs(osp.dirname(out), exist_ok=True)
            with open(out, 'w') as f:
                base = cmd[script + 1]
                f.write(f'_base_ = [{base!r}]\nmodel = dict(backbone=dict('
                        f'share_stages=None, stage_groups={TREE!r}))\n')
            return
        work_dir = cmd[cmd.index('--work-dir') + 1]
        time.sleep(self.seconds)
        name = osp.basename(osp.dirname(work_dir))
        if tool_name == 'train.py':
            if name in self.fail:
                raise RunFailed(f'{name} failed (exit code 1)')
            checkpoint = osp.join(work_dir, 'iter_480.pth')
            open(checkpoint, 'w').close()
            with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
                f.write(checkpoint)
        with self.lock:
            self.calls.append(
                dict(
                    run=f'{name}/{osp.basename(work_dir)}',
                    tool=tool_name,
                    cmd=list(cmd),
                    start=start,
                    end=time.monotonic(),
                    env=dict(slot.env)))


def overlaps(calls):
    """The largest number of commands that ran at once."""
    events = sorted([(c['start'], 1) for c in calls] + [(c['end'], -1)
                                                        for c in calls])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_slots_share_out_gpus_and_cores():
    slots = parallel.make_slots(
        2, gpus_per_run=2, cpu_count=16, visible=['4', '5', '6', '7'])
    assert [s.env['CUDA_VISIBLE_DEVICES'] for s in slots] == ['4,5', '6,7']
    assert [s.gpus for s in slots] == [2, 2]
    assert slots[0].port != slots[1].port
    cpu = parallel.make_slots(3, cpu_count=8)
    assert [s.env['OMP_NUM_THREADS'] for s in cpu] == ['2'] * 3
    assert [s.cores for s in cpu] == [[0, 1], [2, 3], [4, 5]]
    # more threads than cores: not pinned
    assert parallel.make_slots(
        2, threads_per_run=4, cpu_count=4)[0].cores is None
    with pytest.raises(StudyError, match='needs 4 GPUs.*lists 3'):
        parallel.make_slots(2, gpus_per_run=2, visible=['0', '1', '2'])
    with pytest.raises(StudyError, match='--jobs'):
        parallel.make_slots(0)


def test_runs_go_side_by_side_with_their_own_gpus(tmp_path, monkeypatch,
                                                  capsys, plain_config_text):
    study = write_study(tmp_path)
    # one run finished before: skipped
    done = tmp_path / 'wd' / 'no_share' / 'seed_1'
    done.mkdir(parents=True)
    (done / 'study_run.json').write_text(json.dumps(dict(seconds=1.)))
    fake = FakeTools()
    monkeypatch.setattr(launch, 'run_command', fake)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0,1,2,3')
    records = load_tool('tools/study.py').main(
        ['run', study, '--jobs', '2', '--gpus-per-run', '2'])
    assert len(records) == 7
    trained = sorted(c['run'] for c in fake.calls if c['tool'] == 'train.py')
    assert len(trained) == 7 and 'no_share/seed_1' not in trained
    assert overlaps(fake.calls) == 2  # two at a time, never three
    # runs that overlapped had GPUs of their own
    for a in fake.calls:
        for b in fake.calls:
            if a is not b and a['start'] < b['end'] and b['start'] < a['end']:
                assert a['env']['CUDA_VISIBLE_DEVICES'] != \
                    b['env']['CUDA_VISIBLE_DEVICES']
    # a suggested arm starts after its source's test ended
    for seed in (0, 1):
        source = max(c['end'] for c in fake.calls
                     if c['run'] == f'full_share/seed_{seed}')
        assert min(c['start'] for c in fake.calls
                   if c['run'] == f'suggested/seed_{seed}') >= source
    for run in plan_runs(load_study(study)):
        assert osp.isfile(run.record), run.label
    printed = capsys.readouterr().out
    assert 'no_share seed 1: finished before, skipped' in printed
    assert '7 run(s) to go, 2 at a time' in printed
    assert 'start in slot 1 (GPUs 2,3)' in printed
    # two GPUs a run: training under torchrun, testing on the first
    train = next(c['cmd'] for c in fake.calls if c['tool'] == 'train.py')
    assert train[1:4] == ['-m', 'torch.distributed.run', '--nproc_per_node=2']


def test_a_failed_run_stops_only_itself_and_what_waits_for_it(
        tmp_path, monkeypatch, plain_config_text):
    study = write_study(tmp_path)
    fake = FakeTools(seconds=0.05, fail={'full_share'})
    monkeypatch.setattr(launch, 'run_command', fake)
    runs = plan_runs(load_study(study))
    with pytest.raises(RunFailed) as error:
        parallel.run_parallel(
            load_study(study),
            runs,
            parallel.make_slots(3, cpu_count=3),
            echo=lambda line: None)
    message = str(error.value)
    for seed in (0, 1):
        assert f'full_share seed {seed}: full_share failed' in message
        assert f'suggested seed {seed}: its source run failed' in message
    finished = sorted(r.label for r in runs if osp.isfile(r.record))
    assert finished == [
        'no_share seed 0', 'no_share seed 1', 'stl_cls seed 0',
        'stl_cls seed 1'
    ]


def test_a_slot_pins_its_process(tmp_path):
    """The real run_command: the slot's variables reach the tool, which
    runs on the slot's cores; the log names them."""
    if not hasattr(os, 'sched_getaffinity') or \
            0 not in os.sched_getaffinity(0):
        pytest.skip('no CPU affinity on this platform')
    slot = parallel.Slot(0, dict(OMP_NUM_THREADS='1'), [0], 0)
    log = tmp_path / 'out.log'
    child = ('import os; print("(train) cores", sorted(os.sched_getaffinity('
             '0)), os.environ["OMP_NUM_THREADS"])')
    lines = []
    launch.run_command([sys.executable, '-c', child],
                       str(log),
                       lines.append,
                       slot=slot)
    text = log.read_text()
    assert text.startswith('$ OMP_NUM_THREADS=1 (cores 0-0) ')
    assert '(train) cores [0] 1' in text
    assert lines and 'cores [0] 1' in lines[0]


def test_a_slot_of_several_gpus_trains_under_torchrun(tmp_path):
    study = load_study(write_study(tmp_path))
    run = plan_runs(study)[0]
    slot = parallel.make_slots(1, gpus_per_run=2, visible=['0', '1'])[0]
    cmd = launch.train_command(run, False, slot)
    assert cmd[:5] == [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={slot.port}'
    ]
    assert cmd[-2:] == ['--launcher', 'pytorch']
