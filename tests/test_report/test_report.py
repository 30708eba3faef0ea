"""The study report, on synthetic work dirs in MMEngine's file formats.

Each work dir holds what the Runner writes: the dumped config (here one
that inherits a demo config), a training session
``<ts>/vis_data/scalars.json`` (train lines with ``iter``, a val line
without) with its ``<ts>/<ts>.log``, and a test session ``<ts>/<ts>.json``.
"""
import csv
import importlib.util
import json
import os.path as osp

import pytest
from PIL import Image

from mtl_pvt.report import (build_report, find_test_results, format_markdown,
                            load_study, read_train_log, train_times,
                            write_report)
from mtl_pvt.testing.fake_runs import TEST_TS, TRAIN_TS, write_session

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
STL_CONFIGS = dict(
    cls='stl/pvtv2_b0_cls_demo.py',
    det='stl/pvtv2_b0_retinanet_demo.py',
    seg='stl/pvtv2_b0_semfpn_demo.py')
MTL_CONFIGS = dict(
    full_share='mtl/pvtv2_b0_full_share_demo.py',
    no_share='mtl/pvtv2_b0_no_share_demo.py')

# test results: STL 80 / 0.40 / 40; miss_rate, a made-up lower-is-better
# detection metric
STL_TEST = dict(
    cls={
        'accuracy/top1': 80.0,
        'accuracy/top5': 99.0,
        'time': 0.1
    },
    det={
        'coco/bbox_mAP': 0.40,
        'miss_rate': 0.50,
        'time': 0.2
    },
    seg={
        'aAcc': 95.0,
        'mIoU': 40.0,
        'time': 0.3
    })
MTL_TEST = dict(
    full_share={  # -2.5 %, +15 %, +10 %; its own delta-m is not used
        'cls/accuracy/top1': 78.0,
        'det/coco/bbox_mAP': 0.46,
        'det/miss_rate': 0.45,
        'seg/mIoU': 44.0,
        'mtl/delta_m': 99.0,
        'data_time': 0.01,
        'time': 0.5
    },
    no_share={  # +0 %, -10 %, +5 %
        'cls/accuracy/top1': 80.0,
        'det/coco/bbox_mAP': 0.36,
        'det/miss_rate': 0.55,
        'seg/mIoU': 42.0,
        'time': 0.4
    })


def stl_lines(task):
    """Two train lines of a single-task run, 5 iterations apart."""
    loss = dict(
        cls={},
        det=dict(loss_cls=0.5, loss_bbox=0.3),
        seg={'decode.loss_ce': 0.8})[task]
    return [
        dict(
            lr=1e-3,
            data_time=0.01,
            loss=1.0,
            **loss,
            time=0.1,
            epoch=1,
            iter=5,
            step=5),
        dict(
            lr=1e-3,
            data_time=0.01,
            loss=0.5,
            **loss,
            time=0.2,
            epoch=1,
            iter=10,
            step=10),
        {
            'accuracy/top1': 50.0,
            'data_time': 0.01,
            'time': 0.1,
            'step': 1
        },
    ]


def mtl_lines():
    """Two train lines of a joint multi-task run, 10 iterations apart:
    det has no loss_sum (its keys are summed), cls and seg have."""
    return [
        dict(
            {
                'lr': 1e-3,
                'loss': 3.0,
                'cls.loss': 1.0,
                'cls.loss_sum': 1.0,
                'det.loss_cls': 0.6,
                'det.loss_bbox': 0.4,
                'seg.decode.loss_ce': 1.0,
                'seg.decode.acc_seg': 50.0,
                'seg.loss_sum': 1.0,
                'cls.samples_seen': 60,
                'det.samples_seen': 40,
                'seg.samples_seen': 150
            },
            time=1.0,
            iter=10,
            step=10),
        dict(
            {
                'lr': 1e-3,
                'loss': 1.5,
                'cls.loss': 0.5,
                'cls.loss_sum': 0.5,
                'det.loss_cls': 0.2,
                'det.loss_bbox': 0.3,
                'seg.decode.loss_ce': 0.5,
                'seg.decode.acc_seg': 80.0,
                'seg.loss_sum': 0.5,
                'cls.samples_seen': 120,
                'det.samples_seen': 80,
                'seg.samples_seen': 300
            },
            time=2.0,
            iter=20,
            step=20),
    ]


def make_work_dir(root, name, config, lines, test, gpus=1):
    work_dir = root / name
    work_dir.mkdir()
    (work_dir / osp.basename(config)
     ).write_text(f'_base_ = [{osp.join(DEMO, config)!r}]\n')
    write_session(work_dir, TRAIN_TS, lines=lines, gpus=gpus)
    if test is not None:
        write_session(work_dir, TEST_TS, test=test)
    return str(work_dir)


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    """Synthetic STL and MTL work dirs: dict(stl=..., mtl=...)."""
    root = tmp_path_factory.mktemp('work_dirs')
    stl = {
        task:
        make_work_dir(
            root,
            f'stl_{task}',
            config,
            stl_lines(task),
            STL_TEST[task],
            gpus=2 if task == 'cls' else 1)
        for task, config in STL_CONFIGS.items()
    }
    mtl = {
        name: make_work_dir(root, name, config, mtl_lines(), MTL_TEST[name])
        for name, config in MTL_CONFIGS.items()
    }
    return dict(stl=stl, mtl=mtl, root=root)


@pytest.fixture(scope='module')
def report(study):
    """The report of the study without FLOPs."""
    return build_report(study['stl'], study['mtl'], with_flops=False)


def run_of(report, name):
    return next(r for r in report['runs'] if r['name'] == name)


def test_metrics_changes_and_recomputed_delta_m(report):
    assert report['tasks'] == ['cls', 'det', 'seg']
    assert report['references']['det'] == dict(
        metric='coco/bbox_mAP', stl=0.4, higher_is_better=True)
    stl, full, no_share = report['runs']
    assert stl['name'] == 'stl' and stl['delta_m'] == 0.
    assert stl['metrics'] == dict(cls=80., det=0.4, seg=40.)
    assert full['metrics'] == dict(cls=78., det=0.46, seg=44.)
    assert full['changes'] == pytest.approx(dict(cls=-2.5, det=15., seg=10.))
    assert full['delta_m'] == pytest.approx(7.5)  # not the logged 99
    assert no_share['changes'] == pytest.approx(dict(cls=0., det=-10., seg=5))
    assert no_share['delta_m'] == pytest.approx(-5 / 3)


def test_lower_is_better_main_metric(study):
    main = dict(det=dict(metric='miss_rate', higher_is_better=False))
    report = build_report(
        study['stl'], study['mtl'], main_metrics=main, with_flops=False)
    full, no_share = report['runs'][1:]
    # miss rate 0.50 -> 0.45 is 10 % better, -> 0.55 10 % worse
    assert full['changes']['det'] == pytest.approx(10.)
    assert no_share['changes']['det'] == pytest.approx(-10.)
    assert full['delta_m'] == pytest.approx((-2.5 + 10 + 10) / 3)
    assert '| det | `miss_rate` | lower |' in format_markdown(report)


def test_costs_and_times(report):
    stl, full, no_share = report['runs']
    assert stl['params_shared'] == 0
    assert stl['params_total'] == sum(stl['params'].values())
    assert full['params_shared'] > 0 and no_share['params_shared'] == 0
    # full sharing: one backbone instead of three, the same task paths
    assert full['params'] == stl['params']
    assert full[
        'params_total'] == stl['params_total'] - 2 * full['params_shared']
    assert no_share['params_total'] == stl['params_total']
    assert stl['flops'] == dict(cls=None, det=None, seg=None)
    # STL: (0.1 x 5 + 0.2 x 5) s per run, 0.15 s per step, summed
    assert stl['runs']['det']['train_time'] == pytest.approx(1.5)
    assert stl['step_time'] == pytest.approx(3 * 0.15)
    assert stl['train_time'] == pytest.approx(3 * 1.5)
    assert stl['test_time'] == pytest.approx(0.6)
    # MTL: 1 s x 10 + 2 s x 10
    assert full['train_time'] == pytest.approx(30.)
    assert full['step_time'] == pytest.approx(1.5)
    assert full['test_time'] == 0.5


def test_loss_curves(report):
    stl, full = report['runs'][:2]
    assert stl['loss_curves']['det'] == dict(
        step=[5, 10], loss=[1.0, 0.5], samples=[40, 80])
    # cls: 16 images per batch on 2 GPUs
    assert stl['loss_curves']['cls']['samples'] == [160, 320]
    assert full['loss_curves']['cls'] == dict(
        step=[10, 20], loss=[1.0, 0.5], samples=[60, 120])
    assert full['loss_curves']['det']['loss'] == pytest.approx([1.0, 0.5])


def test_written_files(report, tmp_path):
    paths = write_report(report, str(tmp_path))
    names = sorted(osp.basename(p) for p in paths)
    assert names == sorted([
        'report.md', 'report.csv', 'report.json', 'metrics.png',
        'delta_m_vs_params.png', 'loss_cls.png', 'loss_det.png', 'loss_seg.png'
    ])
    for name in names:
        if name.endswith('.png'):
            assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
            with Image.open(tmp_path / name) as image:
                image.verify()
    saved = json.loads((tmp_path / 'report.json').read_text())
    assert [r['delta_m']
            for r in saved['runs']] == pytest.approx([0., 7.5, -5 / 3])
    with open(tmp_path / 'report.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['run'] for r in rows] == ['stl', 'full_share', 'no_share']
    assert float(rows[1]['det/coco/bbox_mAP']) == 0.46
    assert float(rows[1]['det/change_pct']) == pytest.approx(15.)
    assert float(rows[1]['delta_m_pct']) == pytest.approx(7.5)
    assert int(rows[0]['params_total']) == report['runs'][0]['params_total']
    assert rows[0]['cls/flops'] == ''


def test_markdown_table(report):
    lines = format_markdown(report).splitlines()
    table = [line for line in lines if line.startswith('| Run | cls')]
    start = lines.index(table[0])
    rows = lines[start:start + 5]
    assert rows[1].startswith('| --- | ---: |')
    assert [r.count(' | ') for r in rows] == [rows[0].count(' | ')] * 5
    assert rows[2].startswith('| stl | 80 | 0.4 | 40 | +0.00 |')
    assert rows[3].startswith('| full_share | 78 (-2.50%) | 0.46 (+15.00%) '
                              '| 44 (+10.00%) | +7.50 |')
    assert rows[2].endswith('| 0.450 | 4 s | 0.600 |')  # STL times summed
    checkpoint = osp.join(report['runs'][1]['work_dir'], 'iter_20.pth')
    assert report['runs'][1]['checkpoint'] == checkpoint
    test_file = osp.join(TEST_TS, TEST_TS + '.json')
    assert f"| full_share | `{report['runs'][1]['work_dir']}` | " \
        f'`{test_file}` | `iter_20.pth` |' in lines


def test_resumed_training_log(tmp_path):
    write_session(
        tmp_path,
        '20260101_100000',
        lines=[dict(time=1., iter=i, step=i) for i in (5, 10, 15, 20)])
    write_session(
        tmp_path,
        '20260101_120000',
        lines=[dict(time=2., iter=i, step=i) for i in (15, 20, 25)])
    records, text_log = read_train_log(str(tmp_path))
    assert [(r['step'], r['time']) for r in records] == [(5, 1.), (10, 1.),
                                                         (15, 2.), (20, 2.),
                                                         (25, 2.)]
    assert text_log.endswith(
        osp.join('20260101_120000', '20260101_120000.log'))
    assert train_times(records) == dict(
        step_time=pytest.approx(40 / 25), train_time=40., steps=25)


def test_latest_test_results(tmp_path):
    write_session(tmp_path, '20260101_100000', test={'mIoU': 1.})
    write_session(tmp_path, '20260102_100000', test={'mIoU': 2.})
    path, metrics = find_test_results(str(tmp_path))
    assert metrics == {'mIoU': 2.}
    assert path == str(tmp_path / '20260102_100000' / '20260102_100000.json')


def test_missing_test_results(study, tmp_path):
    untested = make_work_dir(tmp_path, 'untested', STL_CONFIGS['det'],
                             stl_lines('det'), None)
    with pytest.raises(FileNotFoundError) as error:
        build_report(
            dict(study['stl'], det=untested), study['mtl'], with_flops=False)
    assert f"no test results in work dir {untested!r}" in str(error.value)
    assert '<timestamp>.json' in str(error.value)


def test_run_without_training_log(study, tmp_path):
    work_dir = make_work_dir(tmp_path, 'tested_only', STL_CONFIGS['seg'], None,
                             STL_TEST['seg'])
    with pytest.warns(UserWarning, match='no training log in'):
        report = build_report(
            dict(study['stl'], seg=work_dir), study['mtl'], with_flops=False)
    stl = report['runs'][0]
    assert stl['runs']['seg']['train_time'] is None
    assert stl['train_time'] is None
    assert stl['loss_curves']['seg'] == dict(step=[], loss=[], samples=[])
    assert '| 0.600 |' in format_markdown(report)  # test times still read


def test_unknown_shape_key(study):
    with pytest.raises(ValueError, match=r"input shapes given for \['sge'\]"):
        build_report(study['stl'], study['mtl'], shapes=dict(sge=(32, 32)))


def test_stl_and_mtl_mixed_up(study):
    with pytest.raises(
            ValueError, match='holds a single-task run .*, given '
            'as MTL'):
        build_report(study['stl'], dict(cls=study['stl']['cls']))


def test_missing_dir(study, tmp_path):
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='nowhere.*does not exist'):
        build_report(study['stl'], dict(study['mtl'], x=missing))


def test_tasks_disagree(study):
    stl = {t: d for t, d in study['stl'].items() if t != 'seg'}
    with pytest.raises(ValueError) as error:
        build_report(stl, study['mtl'], with_flops=False)
    message = str(error.value)
    assert "MTL run 'full_share'" in message
    assert "['cls', 'det', 'seg']" in message
    assert "the STL runs are of ['cls', 'det']" in message


def test_missing_main_metric(study):
    with pytest.raises(KeyError, match="no metric 'bbox_mAP'.*coco/bbox_mAP"):
        build_report(
            study['stl'],
            study['mtl'],
            main_metrics=dict(det='bbox_mAP'),
            with_flops=False)


def test_study_file(study, tmp_path):
    path = tmp_path / 'study.py'
    path.write_text(f"stl = {study['stl']!r}\nmtl = {study['mtl']!r}\n"
                    "main_metrics = dict(det=dict(metric='miss_rate', "
                    "higher_is_better=False))\n"
                    "shapes = dict(cls=32, det='32,48', seg=(32, 32))\n")
    loaded = load_study(str(path))
    assert loaded['stl'] == study['stl']
    assert loaded['shapes'] == dict(cls=(32, 32), det=(32, 48), seg=(32, 32))
    path.write_text('stl = dict()\nmtls = dict()\n')
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['mtls'\]"):
        load_study(str(path))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'mtl_report', osp.join(REPO, 'tools', 'analysis_tools',
                               'mtl_report.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_with_flops(study, tmp_path):
    """The command line with a study file, FLOPs at a tiny size."""
    path = tmp_path / 'study.json'
    path.write_text(json.dumps(dict(stl=study['stl'])))
    out = tmp_path / 'report'
    report = load_tool().main([
        '--study',
        str(path), '--mtl', f"full={study['mtl']['full_share']}", '--shape',
        '32', 'det=32,48', '--out',
        str(out)
    ])
    stl, full = report['runs']
    assert stl['input_shapes'] == dict(
        cls=[32, 32], det=[32, 48], seg=[32, 32])
    assert full['input_shapes'] == stl['input_shapes']
    # full sharing runs the same ops on each task path
    assert full['flops'] == stl['flops']
    assert all(flops > 0 for flops in stl['flops'].values())
    assert 'GFLOPs: one forward of the task path on a 1x3xHxW input (cls ' \
        '32x32, det 32x48, seg 32x32)' in (out / 'report.md').read_text()


def test_tool_error_writes_nothing(study, tmp_path):
    out = tmp_path / 'report'
    stl = [f'{t}={d}' for t, d in study['stl'].items() if t != 'det']
    with pytest.raises(SystemExit, match='mtl_report: error: MTL run'):
        load_tool().main([
            '--stl', *stl, '--mtl', f"full={study['mtl']['full_share']}",
            '--no-flops', '--out',
            str(out)
        ])
    assert not out.exists()


def test_add_report_section_guide(study, tmp_path):
    """docs/developer/add_report_section.md: its section, registered,
    reads each MTL run's last sample counts into the report and writes
    them with their shares after the table."""
    from mtl_pvt.registry import REPORT_SECTIONS
    from mtl_pvt.report import ReportSection
    from mtl_pvt.testing.guides import guide_module
    guide = guide_module('add_report_section', tmp_path)
    try:
        report = build_report(study['stl'], study['mtl'], with_flops=False)
        text = format_markdown(report)
    finally:
        REPORT_SECTIONS.module_dict.pop('SamplesSeenSection')
    for name in study['mtl']:
        assert run_of(report, name)['samples_seen'] == dict(
            cls=120, det=80, seg=300)
    assert 'samples_seen' not in run_of(report, 'stl')
    assert isinstance(guide.SamplesSeenSection(), ReportSection)
    section = text[text.index('## Samples per task'):]
    assert section.count('| 120 (24.0 %) | 80 (16.0 %) | 300 (60.0 %) |') \
        == len(study['mtl'])
    # unregistered, the section is gone from the report again
    assert '## Samples per task' not in format_markdown(report)
