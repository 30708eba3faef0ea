"""tools/study.py: checks, the plan, local runs, Slurm jobs, the report."""
import importlib
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import threading
import time
import types

import pytest
from mmengine.config import Config

from mtl_pvt.study import StudyError, launch, load_study, plan_runs, slurm
from mtl_pvt.testing.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
FULL = osp.join(DEMO, 'mtl', 'pvtv2_b0_full_share_demo.py')
AFFINITY = osp.join(DEMO, 'mtl', 'pvtv2_b0_full_share_affinity_demo.py')
PARTIAL = osp.join(DEMO, 'mtl', 'pvtv2_b0_partial_share_s2_demo.py')
NO_SHARE = osp.join(DEMO, 'mtl', 'pvtv2_b0_no_share_demo.py')
STL_CLS = osp.join(DEMO, 'stl', 'pvtv2_b0_cls_demo.py')
TREE = [[['cls', 'det', 'seg']]] * 3 + [[['cls'], ['det', 'seg']]]


def tool():
    return load_tool('tools/study.py')


def write_study(root, **entries):
    """A study file in ``root`` of ``entries`` (defaults: two arms, seed
    0, work dir ``root/wd``)."""
    entries.setdefault('work_dir', str(root / 'wd'))
    entries.setdefault('seeds', [0])
    entries.setdefault(
        'arms',
        dict(full_share=dict(config=AFFINITY), no_share=dict(config=NO_SHARE)))
    text = ''.join(f'{k} = {v!r}\n' for k, v in entries.items()
                   if v is not None)
    path = root / 'study.py'
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------ bad input --
def two_task_config(root):
    path = root / 'two_tasks.py'
    path.write_text(f'_base_ = [{FULL!r}]\n'
                    'model = dict(tasks=dict(_delete_=True, '
                    'cls=_base_.cls_model, det=_base_.det_model))\n')
    return str(path)


BAD = {
    'missing config': (dict(arms=dict(a=dict(config='nope/a.py'))),
                       "arms.a.config: 'nope/a.py' does not exist"),
    'tasks differ':
    (dict(arms=dict(full_share=dict(config=FULL), two=dict(config='TWO'))),
     r"arms: the arms have different tasks \(full_share: "
     r"\['cls', 'det', 'seg'\]; two: \['cls', 'det'\]\)"),
    'seed twice':
    (dict(seeds=[0, 1, 0]), r'seeds: seed\(s\) \[0\] given more than once'),
    'seed not int': (dict(seeds=[0, '1', 2.0]),
                     r"seeds: must be ints, but got \['1', 2.0\]"),
    'no seeds': (dict(seeds=[]), 'seeds: must be a non-empty list'),
    'unknown key': (dict(seed=1), r"unknown key\(s\) \['seed'\]"),
    'arm name': (dict(arms=dict(stl_x=dict(config=FULL))),
                 'arms.stl_x: an arm name is a folder name'),
    'unknown arm key': (dict(arms=dict(a=dict(config=FULL, cfg=1))),
                        r"arms.a: unknown key\(s\) \['cfg'\]"),
    'unknown stl key': (dict(stl=dict(matched_form='a')),
                        r"stl: unknown key\(s\) \['matched_form'\]"),
    'matched_from no arm': (dict(stl=dict(matched_from='partial')),
                            "stl.matched_from: 'partial' names no arm"),
    'suggest_from no arm':
    (dict(arms=dict(a=dict(config=AFFINITY), s=dict(suggest_from='b'))),
     "arms.s.suggest_from: 'b' names no arm"),
    'suggest_from no affinity':
    (dict(arms=dict(a=dict(config=FULL), s=dict(suggest_from='a'))),
     "arm 'a' measures no task affinity"),
    'reference task': (dict(stl=dict(reference=dict(depth=STL_CLS))),
                       "stl.reference.depth: 'depth' is not a task of the "
                       'arms'),
    'recipes differ': (
        dict(
            arms=dict(
                full_share=dict(config=AFFINITY),
                partial=dict(
                    config=PARTIAL,
                    overrides={
                        'train_cfg.max_iters': 9,
                        'optim_wrapper.weighting': dict(type='RLW')
                    }))),
        r"arms: the arms differ in more than the sharing: partial vs "
        r"full_share, task cls: \['optim_wrapper.weighting', "
        r"'train_cfg.max_iters'\];"),
    'vary not enough': (dict(
        arms=dict(
            full_share=dict(config=AFFINITY),
            partial=dict(
                config=PARTIAL,
                overrides={
                    'train_cfg.max_iters': 9,
                    'optim_wrapper.weighting': dict(type='RLW')
                })),
        vary=['optim_wrapper.weighting']),
                        r"task cls: \['train_cfg.max_iters'\]"),
    'alternating matched_from': (dict(
        arms=dict(
            alt=dict(
                config=osp.join(DEMO, 'mtl',
                                'pvtv2_b0_full_share_alternating_demo.py')))
    ), "stl.matched_from: .* train_dataloader.batch_sampler.mode is "
                                 "'alternating'"),
    'bad shape': (dict(shapes=dict(cls='a,b')), 'shapes.cls: an input shape'),
    'bad metric': (dict(metrics=dict(cls=[])), 'metrics.cls: must be'),
}


@pytest.mark.parametrize('case', list(BAD))
def test_bad_study_files(case, tmp_path, monkeypatch):
    entries, message = BAD[case]
    if 'arms' in entries:
        entries['arms'] = {
            name: {
                k: two_task_config(tmp_path) if v == 'TWO' else v
                for k, v in arm.items()
            }
            for name, arm in entries['arms'].items()
        }
    study = write_study(tmp_path, **entries)
    ran = []
    monkeypatch.setattr(launch, 'run_command', lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit, match=message) as error:
        tool().main(['run', study])
    assert f'error: study file {study}' in str(error.value)
    assert ran == [] and not (tmp_path / 'wd').exists()


def test_bad_selection(tmp_path, monkeypatch):
    study = write_study(
        tmp_path,
        seeds=[0, 1],
        arms=dict(a=dict(config=AFFINITY), s=dict(suggest_from='a')))
    monkeypatch.setattr(launch, 'run_command', lambda *a, **k: 1 / 0)
    for args, message in (
        (['--only', 'b'], r"--only \['b'\]: the runs of .* are \['a', 's', "
         r"'stl_cls', 'stl_det', 'stl_seg'\]"),
        (['--seeds', '2'], r'--seeds \[2\]: the seeds of .* are \[0, 1\]'),
        (['--only', 's'], 's seed 0 is suggested from a seed 0, which has '
         'not finished'),
        (['--launcher', 'slurm'], '--launcher slurm needs --partition'),
    ):
        with pytest.raises(SystemExit, match=message):
            tool().main(['run', study, *args])
    assert not (tmp_path / 'wd').exists()
    with pytest.raises(SystemExit, match="study file 'nope.py' does not"):
        tool().main(['run', 'nope.py'])


# ------------------------------------------------------------- the plan --
def test_plan(tmp_path):
    study = load_study(
        write_study(
            tmp_path,
            seeds=[1, 0],
            arms=dict(
                suggested=dict(suggest_from='full_share'),
                full_share=dict(config=AFFINITY),
                no_share=dict(config=NO_SHARE)),
            stl=dict(tasks=['cls', 'det'], reference=dict(seg=STL_CLS))))
    assert study.matched_from == 'full_share'  # the first arm with a config
    # the main metrics of the delta-m references
    assert study.metrics['det'] == dict(
        metric='coco/bbox_mAP', higher_is_better=True)
    runs = plan_runs(study)
    names = [
        'full_share', 'suggested', 'no_share', 'stl_cls', 'stl_det', 'ref_seg'
    ]
    assert [(r.name, r.seed)
            for r in runs] == [(n, 1) for n in names] + [(n, 0) for n in names]
    by_key = {r.key: r for r in runs}
    assert by_key['suggested', 0].depends_on == ('full_share', 0)
    assert by_key['stl_det', 1].kind == 'stl'
    assert by_key['stl_det', 1].source == 'full_share'
    assert by_key['ref_seg', 0].kind == 'ref'
    assert by_key['ref_seg',
                  0].work_dir == str(tmp_path / 'wd' / 'ref_seg' / 'seed_0')
    assert [r.key for r in plan_runs(study, ['suggested', 'full_share'], [0])
            ] == [('full_share', 0), ('suggested', 0)]


# ---------------------------------------------------- run, skip, resume --
class FakeTools:
    """Records the commands instead of running them; "trains" by writing
    ``last_checkpoint``, "suggests" by writing a config with ``TREE``."""

    def __init__(self):
        self.commands = []

    def __call__(self, cmd, log_path, echo=print):
        self.commands.append(list(cmd))
        tool_name = osp.basename(cmd[1])
        if tool_name == 'train.py':
            work_dir = cmd[cmd.index('--work-dir') + 1]
            checkpoint = osp.join(work_dir, 'iter_480.pth')
            open(checkpoint, 'w').close()
            with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
                f.write(checkpoint)
        elif tool_name == 'suggest_branching.py':
            out = cmd[cmd.index('--out') + 1]
            os.makedirs(osp.dirname(out), exist_ok=True)
            with open(out, 'w') as f:
                f.write(f'_base_ = [{cmd[2]!r}]\nmodel = dict(backbone=dict('
                        f'share_stages=None, stage_groups={TREE!r}))\n')


def finished(work_dir, kind, seconds, **fields):
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'study_run.json'), 'w') as f:
        json.dump(dict(kind=kind, seconds=seconds, **fields), f)


def test_run_skips_finished_and_resumes_interrupted(tmp_path, monkeypatch,
                                                    capsys, plain_config_text):
    study = write_study(
        tmp_path,
        arms=dict(
            full_share=dict(config=AFFINITY),
            suggested=dict(
                suggest_from='full_share', suggest_args=['--z', '0']),
            no_share=dict(config=NO_SHARE)),
        stl=dict(tasks=['cls']))
    wd = tmp_path / 'wd'
    finished(wd / 'no_share' / 'seed_0', 'mtl', 120)
    # stl_cls was interrupted: a checkpoint, its config, no record
    interrupted = wd / 'stl_cls' / 'seed_0'
    interrupted.mkdir(parents=True)
    (interrupted / 'stl_cls.py').write_text('# the config it started with\n')
    (interrupted / 'last_checkpoint').write_text(
        str(interrupted / 'iter_240.pth'))
    fake = FakeTools()
    monkeypatch.setattr(launch, 'run_command', fake)
    tool().main(['run', study])

    def train(name, *resume):
        d = str(wd / name / 'seed_0')
        return [
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'),
            osp.join(d, f'{name}.py'), '--work-dir', d, *resume
        ]

    def test(name):
        d = str(wd / name / 'seed_0')
        return [
            sys.executable,
            osp.join(REPO, 'tools', 'test.py'),
            osp.join(d, f'{name}.py'),
            osp.join(d, 'iter_480.pth'), '--work-dir', d
        ]

    source = str(wd / 'full_share' / 'seed_0')
    suggestion = str(wd / 'suggested' / 'seed_0' / 'suggestion')
    assert fake.commands == [
        train('full_share'),
        test('full_share'),
        [
            sys.executable,
            osp.join(REPO, 'tools', 'analysis_tools', 'suggest_branching.py'),
            osp.join(source, 'full_share.py'), source, '--out',
            osp.join(suggestion, 'suggested_branching.py'), '--json',
            osp.join(suggestion, 'suggested_branching.json'), '--z', '0'
        ],
        train('suggested'),
        test('suggested'),
        train('stl_cls', '--resume'),
        test('stl_cls'),
    ]
    printed = capsys.readouterr().out
    # 3 runs to go at 120 s (no_share's time, the only one known)
    assert '[1/4] full_share seed 0: train (mtl) in ' in printed
    assert 'time left: about 6 min' in printed
    assert '[3/4] no_share seed 0: finished before, skipped' in printed
    assert '[4/4] stl_cls seed 0: resume (stl, task cls)' in printed
    # the configs: the arm's with the seed; the suggested tree; the
    # resumed run keeps its own
    cfg = Config.fromfile(osp.join(source, 'full_share.py'))
    assert cfg.randomness.seed == 0 and cfg.work_dir == source
    assert cfg.custom_hooks[-1].type == 'TaskAffinityHook'
    cfg = Config.fromfile(str(wd / 'suggested' / 'seed_0' / 'suggested.py'))
    assert cfg.model.backbone.stage_groups == TREE
    assert cfg.resume is False and cfg.randomness.seed == 0
    assert (interrupted / 'stl_cls.py').read_text().startswith('# the config')
    record = json.loads(
        (wd / 'suggested' / 'seed_0' / 'study_run.json').read_text())
    assert record['checkpoint'] == str(wd / 'suggested' / 'seed_0' /
                                       'iter_480.pth')
    assert {
        k: record[k]
        for k in ('run', 'seed', 'kind', 'task')
    } == dict(
        run='suggested', seed=0, kind='mtl', task=None)
    assert isinstance(record['seconds'], float)
    # everything finished: a second call runs nothing
    fake.commands.clear()
    tool().main(['run', study])
    assert fake.commands == []
    assert capsys.readouterr().out.count('finished before, skipped') == 4


# ----------------------------------------------------------------- Slurm --
FAKE_SBATCH = """#!/usr/bin/env bash
# appends its argv and the job script to $SLURM_LOG; a new job id each call
n=$(( $(cat "$SLURM_LOG.n" 2>/dev/null || echo 100) + 1 ))
echo $n > "$SLURM_LOG.n"
{ echo "sbatch $*"; echo '--- script'; cat "${@: -1}"; echo '--- end'; } \\
    >> "$SLURM_LOG"
echo "Submitted batch job $n"
"""
# squeue: the jobs named in $SQUEUE_PENDING are pending, the others gone
FAKE_SQUEUE = """#!/usr/bin/env bash
for id in $SQUEUE_PENDING; do [ "$id" = "$3" ] && echo PENDING; done
exit 0
"""
# srun: records its argv; "trains" (last_checkpoint) when running train.py
FAKE_SRUN = """#!/usr/bin/env bash
echo "srun $*" >> "$SLURM_LOG.srun"
for a in "$@"; do
  case $a in --work-dir=*) d=${a#--work-dir=};
    echo "$d/iter_480.pth" > "$d/last_checkpoint";; esac
done
"""


def fake_slurm(bin_dir):
    bin_dir.mkdir()
    for name, text in (('sbatch', FAKE_SBATCH), ('squeue', FAKE_SQUEUE),
                       ('srun', FAKE_SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


def jobs(log):
    """(sbatch argv, script) of each submission in the fake's log."""
    entries = log.read_text().split('--- end\n')[:-1]
    return [tuple(entry.split('\n--- script\n')) for entry in entries]


def test_slurm_jobs(tmp_path, monkeypatch, capsys, plain_config_text):
    fake_slurm(tmp_path / 'bin')
    log = tmp_path / 'slurm.log'
    monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
    monkeypatch.setenv('SLURM_LOG', str(log))
    monkeypatch.setenv('PYTHON', sys.executable)
    study = write_study(
        tmp_path,
        arms=dict(
            full_share=dict(config=AFFINITY),
            suggested=dict(suggest_from='full_share')),
        stl=dict(tasks=['det']))
    slurm = [
        '--launcher', 'slurm', '--partition', 'gpu', '--gpus', '16',
        '--gpus-per-node', '8', '--cpus-per-task', '4',
        '--srun-args=--qos=high', '--sbatch-args=--time=2:00:00 --account=proj'
    ]
    monkeypatch.setattr(launch, 'run_command', lambda *a: 1 / 0)
    submitted = tool().main(['run', study, *slurm])
    assert submitted == {
        ('full_share', 0): '101',
        ('suggested', 0): '102',
        ('stl_det', 0): '103'
    }
    wd = tmp_path / 'wd'
    recorded = jobs(log)
    assert [argv for argv, _ in recorded] == [
        ' '.join([
            'sbatch', f'--job-name=study.{name}.s0', '--partition=gpu',
            '--nodes=2', '--ntasks=16', '--ntasks-per-node=8', '--gres=gpu:8',
            '--cpus-per-task=4',
            f'--output={wd / name / "seed_0" / "slurm-%j.out"}', *after,
            '--time=2:00:00', '--account=proj',
            str(wd / name / 'seed_0' / 'slurm_job.sh')
        ]) for name, after in (
            ('full_share', []),
            ('suggested',
             ['--dependency=afterok:101', '--kill-on-invalid-dep=yes']),
            ('stl_det', []),
        )
    ]
    full_dir = wd / 'full_share' / 'seed_0'
    script = recorded[0][1]
    tools = osp.join(REPO, 'tools')
    assert (f'{tools}/slurm_train.sh gpu study.full_share.s0 "$CONFIG" '
            '"$RUN_DIR" $RESUME') in script
    assert (
        f'{tools}/slurm_test.sh gpu study.full_share.s0 "$CONFIG" '
        '"$(cat "$RUN_DIR/last_checkpoint")" --work-dir "$RUN_DIR"') in script
    assert 'export GPUS=16 GPUS_PER_NODE=8 CPUS_PER_TASK=4' in script
    assert f'{tools}/study.py finish {study} --run full_share --seed 0' in \
        script
    assert 'prepare' not in script
    # the suggested job writes its config when its source has finished
    assert (f'{tools}/study.py prepare {study} --run suggested --seed 0'
            ) in recorded[1][1]
    # the configs of the others are written when they are submitted
    assert Config.fromfile(str(full_dir / 'full_share.py')).randomness.seed \
        == 0
    assert not (wd / 'suggested' / 'seed_0' / 'suggested.py').exists()

    # what a cluster runs: the job script, srun through the slurm tools
    result = subprocess.run(['bash', str(full_dir / 'slurm_job.sh')],
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    srun = (tmp_path / 'slurm.log.srun').read_text().splitlines()
    common = ('srun -p gpu --job-name=study.full_share.s0 --ntasks=16 '
              '--gres=gpu:8 --ntasks-per-node=8 --cpus-per-task=4 '
              f'--kill-on-bad-exit=1 --qos=high {sys.executable} -u ')
    config = full_dir / 'full_share.py'
    assert srun == [
        f'{common}{tools}/train.py {config} --work-dir={full_dir} '
        '--launcher slurm', f'{common}{tools}/test.py {config} '
        f'{full_dir / "iter_480.pth"} --launcher slurm --work-dir {full_dir}'
    ]
    record = json.loads((full_dir / 'study_run.json').read_text())
    assert record['checkpoint'] == str(full_dir / 'iter_480.pth')

    # again: the finished run is skipped, pending jobs are not resubmitted;
    # a suggested run whose source finished has no dependency
    os.remove(wd / 'suggested' / 'seed_0' / 'slurm_job.json')
    monkeypatch.setenv('SQUEUE_PENDING', '103')
    capsys.readouterr()
    submitted = tool().main(['run', study, *slurm])
    assert submitted == {('suggested', 0): '104', ('stl_det', 0): '103'}
    printed = capsys.readouterr().out
    assert 'full_share seed 0: finished before, skipped' in printed
    assert 'stl_det seed 0: job 103 is PENDING: not submitted again' in \
        printed
    argv, _ = jobs(log)[-1]
    assert 'study.suggested.s0' in argv and 'dependency' not in argv


def test_slurm_cpu_jobs_with_requeue(tmp_path):
    """--gpus-per-node 0: CPU jobs without --gres; --requeue: the signal
    ahead of the time limit, a log that goes on after a requeue, and the
    train script told to requeue."""
    study = load_study(write_study(tmp_path))
    run = plan_runs(study)[0]
    options = slurm.SlurmOptions(
        'cpu',
        gpus=2,
        gpus_per_node=0,
        cpus_per_task=1,
        requeue=True,
        signal_seconds=300)
    assert slurm.sbatch_command(study, run, options, 'job.sh', None) == [
        'sbatch', f'--job-name=study.{run.name}.s0', '--partition=cpu',
        '--nodes=1', '--ntasks=2', '--cpus-per-task=1',
        f'--output={run.work_dir}/slurm-%j.out', '--requeue',
        '--signal=USR1@300', '--open-mode=append', 'job.sh'
    ]
    script = slurm.job_script(study, run, options)
    assert 'GPUS=2 GPUS_PER_NODE=0 CPUS_PER_TASK=1 SIGNAL_SECONDS=300' in \
        script
    assert '"$CONFIG" "$RUN_DIR" $RESUME --requeue\n' in script
    for gpus, per_node in ((0, 0), (4, -1), (2, 4)):
        with pytest.raises(StudyError, match='need 0 \\(CPU\\) <= '):
            slurm.SlurmOptions('cpu', gpus=gpus, gpus_per_node=per_node)


def test_a_preempted_local_run_resumes(tmp_path, monkeypatch):
    """Exit code 75 of the training process alone (a checkpoint written on
    a signal): the study runner resumes it; when the runner was signalled
    too, it stops."""
    run = plan_runs(load_study(write_study(tmp_path)))[0]
    calls = []

    def fake(cmd, log_path, echo=print):
        calls.append(cmd)
        if len(calls) == 1:
            raise launch.RunPreempted('stopped')

    monkeypatch.setattr(launch, 'run_command', fake)
    launch.train_steps(run, resume=False, echo=lambda line: None)
    assert ['--resume' in cmd for cmd in calls] == [False, True]

    # the runner's own SIGTERM reaches a training process that stops on
    # it with a checkpoint (exit 75): the runner passes it on and stops
    monkeypatch.undo()
    child = ('import signal, sys, time\n'
             'signal.signal(signal.SIGTERM, lambda *a: sys.exit(75))\n'
             'print("ready", flush=True)\n'
             'time.sleep(60)\n')
    monkeypatch.setattr(launch, 'train_command',
                        lambda run, resume: [sys.executable, '-c', child])
    timer = threading.Timer(1., os.kill, (os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    timer.start()
    with pytest.raises(launch.RunPreempted):
        launch.train_steps(run, resume=False, echo=lambda line: None)
    assert time.monotonic() - started < 30
    assert signal.getsignal(signal.SIGTERM) is before


# ---------------------------------------------------------------- report --
def fake_report_module(monkeypatch, calls):
    importlib.import_module('mtl_pvt.report')  # the package, not faked
    module = types.ModuleType('mtl_pvt.report.study')

    def build(runs, metrics, shapes=None, **kwargs):
        calls.append(dict(runs=runs, metrics=metrics, shapes=shapes, **kwargs))
        return 'the report'

    def write(report, out_dir):
        calls.append(dict(report=report, out_dir=out_dir))
        return [osp.join(out_dir, 'report.md')]

    module.build_study_report = build
    module.write_study_report = write
    monkeypatch.setitem(sys.modules, 'mtl_pvt.report.study', module)


def test_report_passes_the_finished_runs(tmp_path, monkeypatch):
    study = write_study(
        tmp_path,
        seeds=[0, 1],
        stl=dict(tasks=['cls', 'seg'], reference=dict(cls=STL_CLS)),
        metrics=dict(cls='accuracy/top1', seg=['mIoU', 'aAcc']),
        shapes=dict(cls=64, det='128,96'))
    wd = tmp_path / 'wd'
    for name, seeds in (('full_share', [0, 1]), ('no_share', [1]),
                        ('stl_cls', [0, 1]), ('ref_cls', [0])):
        for seed in seeds:
            finished(wd / name / f'seed_{seed}', 'x', 1)
    (wd / 'stl_seg' / 'seed_0').mkdir(parents=True)  # not finished
    calls = []
    fake_report_module(monkeypatch, calls)
    paths = tool().main(['report', study])
    assert calls[0] == dict(
        runs=dict(
            full_share=dict(
                kind='mtl',
                task=None,
                seeds={
                    0: str(wd / 'full_share' / 'seed_0'),
                    1: str(wd / 'full_share' / 'seed_1')
                }),
            no_share=dict(
                kind='mtl',
                task=None,
                seeds={1: str(wd / 'no_share' / 'seed_1')}),
            stl_cls=dict(
                kind='stl',
                task='cls',
                seeds={
                    0: str(wd / 'stl_cls' / 'seed_0'),
                    1: str(wd / 'stl_cls' / 'seed_1')
                }),
            ref_cls=dict(
                kind='ref',
                task='cls',
                seeds={0: str(wd / 'ref_cls' / 'seed_0')})),
        metrics=dict(cls='accuracy/top1', seg=['mIoU', 'aAcc']),
        shapes=dict(cls=(64, 64), det=(128, 96)))
    assert calls[1] == dict(report='the report', out_dir=str(wd / 'report'))
    assert paths == [str(wd / 'report' / 'report.md')]
    tool().main(['report', study, '--out', str(tmp_path / 'r'), '--no-flops'])
    assert calls[2]['with_flops'] is False
    assert calls[3]['out_dir'] == str(tmp_path / 'r')


# ------------------------------------------------------------ end to end --
TINY = {
    **{
        f'train_dataloader.batch_sampler.batch_sizes.{t}': 1
        for t in ('cls', 'det', 'seg')
    },
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'train_cfg.max_iters': 2,
    'default_hooks.checkpoint.interval': 2,
    'default_hooks.logger.interval': 1,
    'val_cfg': None,
    'val_dataloader': None,
    'val_evaluator': None,
    'default_hooks.checkpoint.save_best': None,
    # an untrained detector scores below mmdet's 0.05 threshold
    'model.tasks.det.test_cfg.score_thr': 0.,
    **{
        f'test_dataloader.{t}.{k}': v
        for t in ('cls', 'det', 'seg')
        for k, v in (('num_workers', 0), ('persistent_workers', False))
    },
}

# runs a tool (argv[1:]) with MMEngine's config text left unformatted
PLAIN_TEXT_SHIM = '''import runpy, sys
import mmengine.config.config as mmengine_config
mmengine_config.FormatCode = lambda text, **kwargs: (text, None)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def test_a_tiny_study_end_to_end(tiny_demo_root, tmp_path, monkeypatch, capsys,
                                 train_fork_server, plain_config_text):
    """One arm and one matched STL baseline, one seed, 2 iterations: the
    commands of a study train and test. They run as forks of one process
    that imported the libraries once, with the config text unformatted
    (yapf takes seconds per config here)."""
    monkeypatch.chdir(tiny_demo_root)
    study = write_study(
        tmp_path,
        arms=dict(no_share=dict(config=NO_SHARE, overrides=TINY)),
        stl=dict(tasks=['cls']))

    shim = tmp_path / 'plain_text.py'
    shim.write_text(PLAIN_TEXT_SHIM)

    def run_command(cmd, log_path, echo=print):
        code = train_fork_server.run([cmd[0], str(shim), *cmd[1:]],
                                     os.getcwd(), log_path)
        assert code == 0, open(log_path).read()[-3000:]

    monkeypatch.setattr(launch, 'run_command', run_command)
    records = tool().main(['run', study])
    assert [(r['run'], r['kind'], r['task'])
            for r in records] == [('no_share', 'mtl', None),
                                  ('stl_cls', 'stl', 'cls')]
    wd = tmp_path / 'wd'
    for name in ('no_share', 'stl_cls'):
        run = wd / name / 'seed_0'
        assert (run / 'iter_2.pth').is_file()
        tests = [p for p in run.glob('*/*.json') if p.parent.name == p.stem]
        metrics = json.loads(tests[0].read_text())
        assert 'cls/accuracy/top1' in metrics
        if name == 'stl_cls':
            assert not any(k.startswith(('det/', 'seg/')) for k in metrics)
    assert 'done in' in capsys.readouterr().out
    calls = []
    fake_report_module(monkeypatch, calls)
    tool().main(['report', study])
    assert set(calls[0]['runs']) == {'no_share', 'stl_cls'}
