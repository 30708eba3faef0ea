"""The multi-seed study report, on synthetic work dirs in MMEngine's
formats (as in test_report.py): 2 MTL arms and 3 matched STL runs (one-task
``MultiTaskModel`` configs) x 3 seeds, and 3 single-seed reference runs
(plain demo STL configs).

The expected numbers are worked out by hand below; t with 2 degrees of
freedom (3 seeds) has closed forms: the critical value ``q * sqrt(2 / (1 -
q^2))`` and ``P(|T| > t) = 1 - t / sqrt(2 + t^2)``.
"""
import csv
import json
import math
import os.path as osp

import pytest
from PIL import Image

from mtl_pvt.report import (build_study_report, format_study_markdown,
                            write_study_report)
from mtl_pvt.testing.fake_runs import TEST_TS, TRAIN_TS, write_session

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
SEEDS = (0, 1, 2)
T2 = 0.95 * math.sqrt(2 / (1 - 0.95**2))  # t(2, 0.975) = 4.3026527
METRICS = dict(
    cls='accuracy/top1',
    det=['coco/bbox_mAP',
         dict(metric='miss_rate', higher_is_better=False)],
    seg='mIoU')

# test metrics by seed 0, 1, 2
STL = dict(
    cls={'accuracy/top1': (80., 82., 78.)},
    det={
        'coco/bbox_mAP': (0.40, 0.50, 0.40),
        'miss_rate': (0.50, 0.40, 0.50)
    },
    seg={'mIoU': (40., 50., 40.)})
ARMS = dict(
    # seed 0: cls +5 %, det (+10 +10) / 2, seg -5: delta-m 10/3
    # seed 1: cls 0, det (+10 -10) / 2, seg +10: 10/3
    # seed 2: cls +5, det (-5 -10) / 2, seg 0: -2.5/3 = -5/6
    full_share={
        'cls/accuracy/top1': (84., 82., 81.9),
        'det/coco/bbox_mAP': (0.44, 0.55, 0.38),
        'det/miss_rate': (0.45, 0.44, 0.55),
        'seg/mIoU': (38., 55., 40.)
    },
    # seed 0: seg +10: 10/3; seed 1: cls +5: 5/3; seed 2: 0
    no_share={
        'cls/accuracy/top1': (80., 86.1, 78.),
        'det/coco/bbox_mAP': (0.40, 0.50, 0.40),
        'det/miss_rate': (0.50, 0.40, 0.50),
        'seg/mIoU': (44., 50., 40.)
    })
DELTA_M = dict(
    full_share=[10 / 3, 10 / 3, -5 / 6], no_share=[10 / 3, 5 / 3, 0])
# reference runs, one seed, the STL values of seed 0
REF = {
    'cls': {
        'accuracy/top1': 80.
    },
    'det': {
        'coco/bbox_mAP': 0.40,
        'miss_rate': 0.50
    },
    'seg': {
        'mIoU': 40.
    }
}


def make_work_dir(root, name, config, lines, test, gpus=1):
    """A work dir whose dumped config is ``config`` (text)."""
    work_dir = root / name
    work_dir.mkdir(parents=True)
    (work_dir / f'{name}.py').write_text(config)
    write_session(work_dir, TRAIN_TS, lines=lines, gpus=gpus)
    if test is not None:
        write_session(work_dir, TEST_TS, test=test)
    return str(work_dir)


def mtl_config(arm):
    return f"_base_ = [{osp.join(DEMO, 'mtl', f'pvtv2_b0_{arm}_demo.py')!r}]\n"


def one_task_config(task):
    """The full-share demo recipe with ``task`` alone."""
    return (mtl_config('full_share') +
            f'model = dict(tasks=dict(_delete_=True, {task}=_base_.{task}'
            f'_model), loss_weights=dict(_delete_=True, {task}=1.))\n')


def ref_config(task):
    name = dict(cls='cls', det='retinanet', seg='semfpn')[task]
    config = osp.join(DEMO, 'stl', f'pvtv2_b0_{name}_demo.py')
    return f'_base_ = [{config!r}]\n'


def monitor_lines(steps, samples, updates=True):
    """Train lines of TaskMonitorHook: per step the cumulative samples
    (task -> samples per step) and updates (every step has every task)."""
    lines = []
    for step in steps:
        line = dict(lr=1e-3, loss=1.0, time=0.5, iter=step, step=step)
        for task, per_step in samples.items():
            line[f'{task}.loss_sum'] = 1.0
            line[f'{task}.samples_seen'] = step * per_step
            if updates:
                line[f'{task}.updates'] = step
        lines.append(line)
    return lines


MTL_SAMPLES = dict(cls=6, det=4, seg=15)  # joint steps, 20 of them
# stl_seg: 40 steps x 8 = 320 samples, 40 updates, against 300 and 20


def stl_lines(task):
    if task == 'seg':
        return monitor_lines([20, 40], dict(seg=8))
    return monitor_lines([10, 20], {task: MTL_SAMPLES[task]})


def stl_test(task, index):
    return {
        f'{task}/{metric}': values[index]
        for metric, values in STL[task].items()
    }


def arm_test(arm, index):
    test = {key: values[index] for key, values in ARMS[arm].items()}
    test.update({'mtl/delta_m': 99., 'time': 0.5})  # neither is used
    return test


def make_runs(root, seeds=SEEDS, refs=True):
    """The study: run name -> dict(kind, task, seeds)."""
    runs = {}
    for arm in ARMS:
        runs[arm] = dict(
            kind='mtl',
            seeds={
                s:
                make_work_dir(root, f'{arm}_s{s}', mtl_config(arm),
                              monitor_lines([10, 20], MTL_SAMPLES),
                              arm_test(arm, s))
                for s in seeds
            })
    for task in STL:
        runs[f'stl_{task}'] = dict(
            kind='stl',
            task=task,
            seeds={
                s:
                make_work_dir(root, f'stl_{task}_s{s}', one_task_config(task),
                              stl_lines(task), stl_test(task, s))
                for s in seeds
            })
    if refs:
        for task in STL:
            # plain STL runs: 10 iterations of 16 (cls: on 2 GPUs)
            lines = [dict(loss=1., time=0.1, iter=i, step=i) for i in (5, 10)]
            test = dict(REF[task], time=0.1)
            runs[f'ref_{task}'] = dict(
                kind='ref',
                task=task,
                seeds={
                    0:
                    make_work_dir(
                        root,
                        f'ref_{task}',
                        ref_config(task),
                        lines,
                        test,
                        gpus=2 if task == 'cls' else 1)
                })
    return runs


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp('study'))


@pytest.fixture(scope='module')
def report(runs):
    return build_study_report(runs, METRICS, with_flops=False)


def run_of(report, name):
    return next(r for r in report['runs'] if r['name'] == name)


def comparison(report, arm, key='comparisons'):
    return next(c for c in report[key] if c['arm'] == arm)


def mean_and_half_width(values):
    """By hand: the mean and the 95 % half width of 3 values."""
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean)**2 for v in values) / 2)
    return mean, T2 * sd / math.sqrt(3)


def test_delta_m_per_seed_paired_with_the_stl_seed(report):
    full = comparison(report, 'full_share')
    assert full['against'] == 'stl'
    assert full['baselines'] == dict(
        cls='stl_cls', det='stl_det', seg='stl_seg')
    assert full['seeds'] == [0, 1, 2]
    dm = full['delta_m']
    assert dm['values'] == pytest.approx(DELTA_M['full_share'])
    # mean 35/18; deviations 25/18, 25/18, -50/18: sd sqrt(1875)/18,
    # sem 25/18
    assert dm['mean'] == pytest.approx(35 / 18)
    assert dm['sd'] == pytest.approx(math.sqrt(1875) / 18)
    assert dm['sem'] == pytest.approx(25 / 18)
    assert dm['half_width'] == pytest.approx(T2 * 25 / 18)
    assert dm['half_width'] == pytest.approx(5.9759066, abs=1e-6)
    assert dm['ci'] == pytest.approx(
        (35 / 18 - T2 * 25 / 18, 35 / 18 + T2 * 25 / 18))
    assert full['task_changes']['det']['values'] == pytest.approx(
        [10., 0., -7.5])
    no_share = comparison(report, 'no_share')['delta_m']
    # 10/3, 5/3, 0: mean 5/3, sd 5/3
    assert no_share['mean'] == pytest.approx(5 / 3)
    assert no_share['sd'] == pytest.approx(5 / 3)
    assert no_share['half_width'] == pytest.approx(T2 * 5 / 3 / math.sqrt(3))


def test_paired_tests_of_the_main_metrics(report):
    tests = comparison(report, 'full_share')['tests']
    assert list(tests) == ['cls', 'det', 'seg']
    seg = tests['seg']
    assert seg['metric'] == 'mIoU' and seg['baseline'] == 'stl_seg'
    # d = 38-40, 55-50, 40-40 = -2, 5, 0: mean 1, sd sqrt(13),
    # t = 1 / sqrt(13/3)
    assert seg['differences'] == [-2., 5., 0.]
    assert seg['mean_diff'] == 1.
    assert seg['sd'] == pytest.approx(math.sqrt(13))
    t = 1 / math.sqrt(13 / 3)
    assert seg['t'] == pytest.approx(t) and seg['df'] == 2
    assert seg['p'] == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert seg['p'] == pytest.approx(0.678366, abs=1e-6)
    assert seg['ci'] == pytest.approx(
        (1 - T2 * math.sqrt(13 / 3), 1 + T2 * math.sqrt(13 / 3)))
    # the main metric of det is its first, mAP: d = 0.04, 0.05, -0.02
    assert tests['det']['metric'] == 'coco/bbox_mAP'
    assert tests['det']['mean_diff'] == pytest.approx(0.07 / 3)
    # no_share det equals its STL at every seed: identical, p 1
    same = comparison(report, 'no_share')['tests']['det']
    assert same['identical'] and same['p'] == 1. and same['t'] == 0.


def test_metrics_per_run(report):
    names = [r['name'] for r in report['runs']]
    assert names == [
        'full_share', 'no_share', 'stl_cls', 'stl_det', 'stl_seg', 'ref_cls',
        'ref_det', 'ref_seg'
    ]
    full = run_of(report, 'full_share')
    assert full['tasks'] == ['cls', 'det', 'seg'] and full['n_seeds'] == 3
    top1 = full['metrics']['cls/accuracy/top1']
    mean, half = mean_and_half_width([84., 82., 81.9])
    assert top1['values'] == [84., 82., 81.9] and top1['main']
    assert top1['mean'] == pytest.approx(mean)
    assert top1['half_width'] == pytest.approx(half)
    miss = full['metrics']['det/miss_rate']
    assert not miss['main'] and miss['higher_is_better'] is False
    # the STL runs' metrics are keyed '<task>/<metric>' as the arms'
    stl_det = run_of(report, 'stl_det')
    assert stl_det['tasks'] == ['det']
    assert list(stl_det['metrics']) == ['det/coco/bbox_mAP', 'det/miss_rate']
    assert stl_det['metrics']['det/miss_rate']['values'] == [.5, .4, .5]


def test_single_seed_runs(report):
    ref = run_of(report, 'ref_cls')
    assert ref['single_seed'] and ref['n_seeds'] == 1
    top1 = ref['metrics']['cls/accuracy/top1']  # read without the prefix
    assert top1['mean'] == 80. and top1['n'] == 1
    assert top1['sd'] is None and top1['ci'] is None
    text = format_study_markdown(report)
    assert '(single-seed runs: ref_cls, ref_det, ref_seg)' in text
    assert '| ref_cls | ref | cls | 0 | 1 seed |' in text
    assert '| ref_cls | 1 seed | 80 | - | - (1 seed) |' in text


def test_budget(report):
    full = run_of(report, 'full_share')['budget']
    assert full['seg'] == dict(
        iters=[20] * 3,
        samples=[300] * 3,
        updates=[20] * 3,
        train_flops=[None] * 3)
    assert full['cls']['samples'] == [120] * 3
    assert run_of(report, 'stl_seg')['budget']['seg']['samples'] == [320] * 3
    assert run_of(report, 'stl_seg')['budget']['seg']['updates'] == [40] * 3
    # a plain run: 10 iterations x 16 images x 2 GPUs
    ref = run_of(report, 'ref_cls')['budget']['cls']
    assert ref == dict(
        iters=[10], samples=[320], updates=[10], train_flops=[None])
    flags = [(f['arm'], f['task'], f['quantity'], f['status'])
             for f in report['budget_flags']]
    assert flags == [('full_share', 'seg', 'samples', 'differs'),
                     ('full_share', 'seg', 'updates', 'differs'),
                     ('no_share', 'seg', 'samples', 'differs'),
                     ('no_share', 'seg', 'updates', 'differs')]
    text = format_study_markdown(report)
    assert ('- ⚠ full_share / seg: the samples differ from its STL run '
            'stl_seg (seed 0: 300 vs 320, seed 1: 300 vs 320, seed 2: 300 '
            'vs 320).') in text
    seg_table = text[text.index('### seg'):text.index('## Δm against')]
    assert '| 300 ⚠ | 20 ⚠ | - |' in seg_table
    assert '| stl_seg | 3 |' in seg_table
    cls_table = text[text.index('### cls'):text.index('### det')]
    assert '⚠' not in cls_table


def test_against_the_references(report):
    ref = comparison(report, 'full_share', 'references')
    assert ref['against'] == 'ref' and ref['missing'] == []
    # seed 1: cls 82/80 +2.5, det (0.55/0.40 +37.5, 0.44 vs 0.50 +12)
    # / 2 = 24.75, seg 55/40 +37.5; seed 2: +2.375, -7.5, 0
    expected = [10 / 3, (2.5 + 24.75 + 37.5) / 3, (2.375 - 7.5) / 3]
    assert ref['delta_m']['values'] == pytest.approx(expected)
    mean, half = mean_and_half_width(expected)
    assert ref['delta_m']['mean'] == pytest.approx(mean)
    assert ref['delta_m']['half_width'] == pytest.approx(half)
    text = format_study_markdown(report)
    assert '## Δm against the reference (paper-recipe) baselines' in text


def test_markdown(report):
    text = format_study_markdown(report)
    assert 'the 95 % Student-t confidence interval of the mean' in text
    assert 'seed s of the arm against seed s of the STL runs' in text
    assert 'forward FLOPs × samples' in text
    lines = text.splitlines()
    start = lines.index(
        '## Δm against the matched STL runs (paired by seed)') + 2
    assert lines[start].startswith('| Arm | Seeds | Δm mean (%) | sd |')
    low, high = 35 / 18 - T2 * 25 / 18, 35 / 18 + T2 * 25 / 18
    assert lines[start + 2] == (
        f'| full_share | 3 | +1.94 | 2.41 | [{low:+.2f}, {high:+.2f}] | '
        '+3.33, +3.33, -0.83 | +3.33 | +0.83 | +1.67 |')
    assert '| full_share | seg | `mIoU` (higher) | stl_seg | 3 | +1 |' in text
    # every row of every table has the columns of its header
    for i, line in enumerate(lines):
        if line.startswith('| ') and not lines[i - 1].startswith('|'):
            width = line.count(' | ')
            j = i
            while j < len(lines) and lines[j].startswith('|'):
                assert lines[j].count(' | ') == width, lines[j]
                j += 1


def test_written_files(report, tmp_path):
    paths = write_study_report(report, str(tmp_path))
    assert sorted(osp.basename(p) for p in paths) == [
        'delta_m.png', 'metrics.png', 'report.csv', 'report.json', 'report.md'
    ]
    for name in ('metrics.png', 'delta_m.png'):
        with Image.open(tmp_path / name) as image:
            image.verify()
    saved = json.loads((tmp_path / 'report.json').read_text())
    dm = saved['comparisons'][0]['delta_m']
    assert dm['values'] == pytest.approx(DELTA_M['full_share'])
    assert dm['ci'] == pytest.approx(
        list(report['comparisons'][0]['delta_m']['ci']))
    with open(tmp_path / 'report.csv') as f:
        rows = list(csv.DictReader(f))
    row = next(r for r in rows if r['run'] == 'full_share'
               and r['quantity'] == 'delta_m_pct' and r['against'] == 'stl')
    assert float(row['mean']) == pytest.approx(35 / 18)
    assert int(row['n']) == 3
    samples = next(r for r in rows
                   if r['run'] == 'stl_seg' and r['quantity'] == 'samples')
    assert samples['values'] == '320;320;320'
    ref = next(r for r in rows
               if r['run'] == 'ref_seg' and r['quantity'] == 'mIoU')
    assert ref['n'] == '1' and ref['sd'] == '' and ref['ci_low'] == ''


def test_single_seed_study_with_flops(tmp_path):
    """One seed per run, FLOPs counted at 32x32 (an arm of cls and seg, to
    stay fast): no interval, no test, training FLOPs = samples x forward
    FLOPs."""
    tasks = ('cls', 'seg')
    config = mtl_config('full_share') + (
        'model = dict(tasks=dict(_delete_=True, cls=_base_.cls_model, '
        'seg=_base_.seg_model), loss_weights=dict(_delete_=True, cls=1., '
        'seg=1.))\n')
    arm = {
        k: v
        for k, v in arm_test('full_share', 0).items() if 'det' not in k
    }
    samples = {t: MTL_SAMPLES[t] for t in tasks}
    runs = dict(
        cls_seg=dict(
            kind='mtl',
            seeds={
                0:
                make_work_dir(tmp_path, 'cls_seg', config,
                              monitor_lines([10, 20], samples), arm)
            }))
    for task in tasks:
        runs[f'stl_{task}'] = dict(
            kind='stl',
            task=task,
            seeds={
                0:
                make_work_dir(tmp_path, f'stl_{task}', one_task_config(task),
                              stl_lines(task), stl_test(task, 0))
            })
    metrics = {t: METRICS[t] for t in tasks}
    report = build_study_report(runs, metrics, shapes=dict(cls=32, seg='32'))
    dm = comparison(report, 'cls_seg')['delta_m']
    assert dm['values'] == pytest.approx([0.])  # cls +5 %, seg -5 %
    assert dm['ci'] is None and dm['n'] == 1
    seg = comparison(report, 'cls_seg')['tests']['seg']
    assert seg['p'] is None and seg['mean_diff'] == -2.
    arm, stl_seg = run_of(report, 'cls_seg'), run_of(report, 'stl_seg')
    # the one-task model runs the ops of the arm's seg path
    assert stl_seg['flops']['seg'] == arm['flops']['seg'] > 0
    assert arm['budget']['seg']['train_flops'] == [300 * arm['flops']['seg']]
    assert stl_seg['params_shared'] == 0 and arm['params_shared'] > 0
    text = format_study_markdown(report)
    assert '| cls_seg | 1 seed | +0.00 | - | - (1 seed) | +0.00 |' in text
    assert 'cls 32x32, seg 32x32' in text
    write_study_report(report, str(tmp_path / 'out'))


def test_updates_not_logged(tmp_path):
    runs = make_runs(tmp_path, seeds=(0, ), refs=False)
    runs = {n: r for n, r in runs.items() if n != 'no_share'}
    work_dir = runs['full_share']['seeds'][0]
    # an older log without <task>.updates
    scalars = osp.join(work_dir, TRAIN_TS, 'vis_data', 'scalars.json')
    with open(scalars, 'w') as f:
        for line in monitor_lines([10, 20], MTL_SAMPLES, updates=False):
            f.write(json.dumps(line) + '\n')
    report = build_study_report(runs, METRICS, with_flops=False)
    flags = {
        (f['task'], f['quantity']): f['status']
        for f in report['budget_flags']
    }
    assert flags[('cls', 'updates')] == 'unknown'
    assert ('cls', 'samples') not in flags
    assert 'the updates are not logged from its STL run' not in \
        format_study_markdown(report)


# --------------------------------------------------------------- errors --
@pytest.fixture
def small(tmp_path):
    """One arm, its STL runs, seeds 0 and 1."""
    runs = make_runs(tmp_path, seeds=(0, 1), refs=False)
    del runs['no_share']
    return runs


def test_seed_without_test_results(small, tmp_path):
    untested = make_work_dir(tmp_path, 'untested', one_task_config('det'),
                             stl_lines('det'), None)
    small['stl_det']['seeds'][1] = untested
    with pytest.raises(FileNotFoundError) as error:
        build_study_report(small, METRICS, with_flops=False)
    message = error.value.args[0]
    assert message.startswith(
        f"run 'stl_det', seed 1 (work dir {untested!r}): no test results")


def test_seeds_that_cannot_be_paired(small):
    del small['stl_seg']['seeds'][1]
    with pytest.raises(ValueError) as error:
        build_study_report(small, METRICS, with_flops=False)
    assert error.value.args[0] == (
        "cannot pair MTL arm 'full_share' with its STL run 'stl_seg' (task "
        "'seg') by seed: seed(s) [1] of 'full_share' have no 'stl_seg' run, "
        "seed(s) [] of 'stl_seg' no 'full_share' run (full_share: [0, 1], "
        'stl_seg: [0])')


def test_missing_metric(small):
    metrics = dict(METRICS, det=['coco/bbox_mAP', 'coco/bbox_mAP_50'])
    with pytest.raises(KeyError) as error:
        build_study_report(small, metrics, with_flops=False)
    message = error.value.args[0]
    work_dir = small['full_share']['seeds'][0]
    assert message.startswith(
        f"run 'full_share', seed 0 (work dir {work_dir!r}, test results ")
    assert "no metric 'det/coco/bbox_mAP_50' (task 'det')" in message


def test_arm_task_without_stl_run(small):
    del small['stl_cls']
    with pytest.raises(
            ValueError,
            match="MTL arm 'full_share' has task "
            "'cls', but there is no STL run of it"):
        build_study_report(small, METRICS, with_flops=False)


def test_stl_run_of_another_task(small):
    small['stl_cls']['seeds'][0] = small['stl_seg']['seeds'][0]
    with pytest.raises(
            ValueError,
            match=r"run 'stl_cls', seed 0 .*holds a multi-task \(tasks "
            r"\['seg'\]\) run .*given as STL of 'cls'"):
        build_study_report(small, METRICS, with_flops=False)


@pytest.mark.parametrize('change, message', [
    (dict(stl_cls=dict(kind='single', task='cls', seeds={0: 'x'})),
     "kind must be one of"),
    (dict(stl_cls=dict(kind='stl', seeds={0: 'x'})), 'task=None'),
    (dict(stl_cls=dict(kind='stl', task='depth', seeds={0: 'x'})),
     "task 'depth', which has no metrics"),
    (dict(stl_cls=dict(kind='stl', task='cls', seeds={})), 'seeds must be'),
    (dict(stl_cls=dict(kind='stl', task='cls', seeds={'0': 'x'})),
     'seeds are ints'),
    (dict(other=dict(kind='stl', task='cls', seeds={0: 'x'})),
     "runs 'stl_cls' and 'other' are both 'stl' runs of task 'cls'"),
])
def test_bad_run_entries(small, change, message):
    with pytest.raises(ValueError, match=message):
        build_study_report(dict(small, **change), METRICS, with_flops=False)


def test_metrics_of_no_run(small):
    with pytest.raises(
            ValueError, match=r"task\(s\) \['depth'\], which no "
            'run has'):
        build_study_report(
            small, dict(METRICS, depth='rmse'), with_flops=False)
