"""The task affinity section of the study report, on synthetic work dirs.

The STL and MTL work dirs are those of ``test_report.py``; one more MTL run
holds the ``affinity.json`` of ``TaskAffinityHook`` in two sessions (the
second resumed at step 10, so the first one's record of step 10 is not
used), a ``suggested_branching.json`` and the ``mtl.grad_cos.*`` scalars of
``MultiTaskOptimWrapper`` in its training log.
"""
import json
import math

import pytest
from PIL import Image
from test_report import (MTL_CONFIGS, MTL_TEST, TEST_TS, TRAIN_TS,
                         make_work_dir, mtl_lines, run_of, study,
                         write_session)

from mtl_pvt.report import (build_report, format_markdown,
                            load_affinity_summary, write_affinity_plots,
                            write_report)
from mtl_pvt.report.markdown import compact

__all__ = ['study']  # the fixture, imported

TASKS = ['cls', 'det', 'seg']
# stage 0 shared by all, stage 1 by det and seg, stages 2-3 one per task
STAGE_GROUPS = [[TASKS], [['cls'], ['det', 'seg']], [['cls'], ['det'],
                                                     ['seg']],
                [['cls'], ['det'], ['seg']]]
# Z(i -> j) of the first measurement; measurement k is these times SCALES[k]
AFFINITY = {
    'stage0': {
        'cls': dict(cls=1e-2, det=1e-3, seg=-2e-3),
        'det': dict(cls=5e-4, det=2e-2, seg=3e-4),
        'seg': dict(cls=-1e-3, det=2e-4, seg=3e-2),
    },
    'stage1.det_seg': {
        'det': dict(det=1e-2, seg=4e-4),
        'seg': dict(det=-5e-4, seg=2e-2),
    },
    'backbone': {
        'cls': dict(cls=4e-2, det=2e-3, seg=-3e-3),
        'det': dict(cls=1e-3, det=5e-2, seg=6e-4),
        'seg': dict(cls=-2e-3, det=4e-4, seg=6e-2),
    },
}
GRAD_COS = {
    'stage0': {
        'cls-det': 0.1,
        'cls-seg': -0.2,
        'det-seg': 0.3
    },
    'stage1.det_seg': {
        'det-seg': -0.1
    }
}
GRAD_NORM = {
    'stage0': dict(cls=1., det=2., seg=3.),
    'stage1.det_seg': dict(det=4., seg=5.)
}
# the merged run: steps 0 (first session), 10 and 20 (second session)
SESSIONS = {
    '20260101_090000': {
        0: 1.,
        10: -50.
    },  # step 10 is measured again after the resume
    TRAIN_TS: {
        10: 2.,
        20: 3.
    },
}
SEM = 1 / math.sqrt(3)  # of (1, 2, 3) x v: mean 2 v, standard error v / 1.73


def scaled(values, scale):
    if isinstance(values, dict):
        return {k: scaled(v, scale) for k, v in values.items()}
    return values * scale


def record(step, scale):
    loss = dict(cls=1., det=2., seg=3.)
    return dict(
        step=step,
        loss=loss,
        affinity=scaled(AFFINITY, scale),
        grad_cos=scaled(GRAD_COS, scale),
        grad_norm=scaled(GRAD_NORM, scale),
        lr={c: 1e-3
            for c in GRAD_COS})


def write_affinity(work_dir, ts, records):
    session = work_dir / ts
    session.mkdir(exist_ok=True)
    (session / 'affinity.json').write_text(
        json.dumps(
            dict(
                tasks=TASKS,
                stage_groups=STAGE_GROUPS,
                interval=10,
                lr=None,
                max_norm=None,
                records=records)))


SUGGESTION = dict(
    stage_groups=[[TASKS], [['cls'], ['det', 'seg']], [['cls'], ['det',
                                                                 'seg']],
                  [['cls'], ['det'], ['seg']]],
    score=1.5e-3,
    extra_params=1234567,
    branches=3,
    search='exhaustive',
    measured=STAGE_GROUPS,
    backbone_params=4644567,
    total_params=9000000,
    stage_params=[10, 20, 30, 40],
    config='/somewhere/suggested_branching.py',
    affinity=[{}, {}, {}, {}],
    affinity_used=[{}, {}, {}, {}],
    z=2.,
    num_records=2)


def training_lines():
    """The MTL training lines with the wrapper's cosines: the one of
    cls-det logged once (LogProcessor repeats it), det-seg twice."""
    first, second = mtl_lines()
    first['mtl.grad_cos.cls-det.stage0'] = 0.5
    second['mtl.grad_cos.cls-det.stage0'] = 0.5
    first['mtl.grad_cos.det-seg.stage1.det_seg'] = 0.2
    second['mtl.grad_cos.det-seg.stage1.det_seg'] = 0.4
    return [first, second]


@pytest.fixture(scope='module')
def affinity_run(study):
    work_dir = make_work_dir(study['root'],
                             'measured', MTL_CONFIGS['full_share'],
                             training_lines(), MTL_TEST['full_share'])
    root = study['root'] / 'measured'
    for ts, scales in SESSIONS.items():
        write_affinity(root, ts, [record(s, k) for s, k in scales.items()])
    (root / 'suggested_branching.json').write_text(json.dumps(SUGGESTION))
    return work_dir


@pytest.fixture(scope='module')
def report(study, affinity_run):
    mtl = dict(measured=affinity_run, no_share=study['mtl']['no_share'])
    return build_report(study['stl'], mtl, with_flops=False)


def section(report):
    text = format_markdown(report)
    assert text.count('## Task affinity') == 1
    return text[text.index('## Task affinity'):].splitlines()


def table_after(lines, header):
    start = next(n for n, line in enumerate(lines) if line.startswith(header))
    end = next((n for n in range(start, len(lines)) if not lines[n]),
               len(lines))
    return lines[start:end]


def test_summary_merges_sessions(report):
    summary = run_of(report, 'measured')['affinity']
    assert summary['steps'] == [0, 10, 20]
    assert summary['num_records'] == 3
    assert [r['step'] for r in summary['records']] == [0, 10, 20]
    assert summary['copies'] == ['stage0', 'stage1.det_seg', 'backbone']
    assert summary['stage_groups'] == STAGE_GROUPS
    assert summary['affinity']['stage0']['cls']['det'] == pytest.approx(2e-3)
    assert summary['affinity_sem']['stage0']['cls']['det'] == pytest.approx(
        1e-3 * SEM)
    assert summary['grad_cos']['stage1.det_seg']['det-seg'] == \
        pytest.approx(-0.2)
    assert summary['suggestion']['score'] == 1.5e-3
    assert 'affinity' not in summary['suggestion']  # the tree, not the data
    train = run_of(report, 'measured')['train_grad_cos']
    assert train['grad_cos'] == {
        'stage0': {
            'cls-det': 0.5
        },
        'stage1.det_seg': {
            'det-seg': pytest.approx(0.3)
        }
    }
    assert train['num_values'] == {
        'stage0': {
            'cls-det': 1
        },
        'stage1.det_seg': {
            'det-seg': 2
        }
    }
    no_share = run_of(report, 'no_share')
    assert no_share['affinity'] is None
    assert no_share['train_grad_cos'] is None


def test_markdown_affinity_table(report):
    lines = section(report)
    assert '### measured' in lines
    assert '### no_share' not in lines  # no affinity data: no section
    assert any(
        line.startswith('3 measurement(s) by TaskAffinityHook, at steps 0, '
                        '10, 20 (`20260101_090000/affinity.json`, '
                        f'`{TRAIN_TS}/affinity.json` in') for line in lines)
    table = table_after(lines, '| Z(i→j) |')
    assert table[0] == '| Z(i→j) | stage0 | stage1.det_seg | backbone |'
    assert table[1] == '| --- | ---: | ---: | ---: |'
    rows = {row.split(' | ')[0][2:]: row for row in table[2:]}
    assert list(rows) == [
        'cls→det', 'cls→seg', 'det→cls', 'det→seg', 'seg→cls', 'seg→det',
        'cls→cls (own)', 'det→det (own)', 'seg→seg (own)'
    ]
    # means of 1, 2 and 3 times the values: 2 x; standard error x / 1.73
    assert rows['cls→det'] == \
        '| cls→det | +2.000e-03 ± 5.8e-04 | - | +4.000e-03 ± 1.2e-03 |'
    assert rows['cls→seg'] == \
        '| cls→seg | -4.000e-03 ± 1.2e-03 | - | -6.000e-03 ± 1.7e-03 |'
    assert rows['det→seg'] == '| det→seg | +6.000e-04 ± 1.7e-04 | ' \
        '+8.000e-04 ± 2.3e-04 | +1.200e-03 ± 3.5e-04 |'
    assert rows['seg→det'] == '| seg→det | +4.000e-04 ± 1.2e-04 | ' \
        '-1.000e-03 ± 2.9e-04 | +8.000e-04 ± 2.3e-04 |'
    assert rows['seg→seg (own)'] == '| seg→seg (own) | +6.000e-02 ± ' \
        '1.7e-02 | +4.000e-02 ± 1.2e-02 | +1.200e-01 ± 3.5e-02 |'


def test_markdown_cosines(report):
    lines = section(report)
    lookahead = table_after(lines, '| cos | stage0 | stage1.det_seg |')
    assert lookahead[2:] == [
        '| cls·det | +0.200 ± 0.058 | - |',
        '| cls·seg | -0.400 ± 0.115 | - |',
        '| det·seg | +0.600 ± 0.173 | -0.200 ± 0.058 |',
    ]
    assert any('Mean cosine of the task gradients of the training steps '
               '(MultiTaskOptimWrapper, `mtl.grad_cos.*` of the training '
               'log, 1-2 logged value(s) per pair, steps 10 to 20)' in line
               for line in lines)
    train = table_after(lines, '| cos (training) |')
    assert train[0] == '| cos (training) | stage0 | stage1.det_seg |'
    assert train[2:] == [
        '| cls·det | +0.500 | - |',
        '| det·seg | - | +0.300 |',
    ]


def test_markdown_suggested_tree(report):
    lines = section(report)
    start = lines.index(
        '```',
        lines.index(
            next(
                line for line in lines
                if line.startswith('Suggested branching'))))
    assert lines[start + 1:start + 6] == [
        'stage 0: [cls det seg]', 'stage 1: [cls] [det seg]',
        'stage 2: [cls] [det seg]', 'stage 3: [cls] [det] [seg]', '```'
    ]
    text = '\n'.join(lines)
    assert 'score +1.500e-03' in text
    assert '+1.235 M extra backbone parameters vs full sharing (backbone ' \
        '4.645 M)' in text
    assert '- Config written: `/somewhere/suggested_branching.py`.' in text
    assert 'Suggested from 2 measurement(s); the run now has 3' in text
    # the measured tree
    assert 'stage 1: [cls] [det seg]\nstage 2: [cls] [det] [seg]' in text
    assert '![affinity heatmaps of measured](affinity_measured.png)' in text
    assert '(affinity_curves_measured.png)' in text


def test_written_plots_and_json(report, tmp_path):
    paths = write_report(report, str(tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert 'affinity_measured.png' in names
    assert 'affinity_curves_measured.png' in names
    assert not [n for n in names if 'no_share' in n]
    assert str(tmp_path / 'affinity_measured.png') in paths
    for name in ('affinity_measured.png', 'affinity_curves_measured.png'):
        with Image.open(tmp_path / name) as image:
            image.verify()
    saved = json.loads((tmp_path / 'report.json').read_text())
    measured = next(r for r in saved['runs'] if r['name'] == 'measured')
    assert measured['affinity']['affinity']['backbone']['det']['seg'] == \
        pytest.approx(1.2e-3)
    assert measured['affinity']['suggestion']['stage_groups'] == \
        SUGGESTION['stage_groups']
    assert measured['train_grad_cos']['grad_cos']['stage0'] == {'cls-det': 0.5}
    assert next(r for r in saved['runs']
                if r['name'] == 'no_share')['affinity'] is None


def test_no_affinity_no_section(report, tmp_path):
    report = dict(
        report, runs=[r for r in report['runs'] if r['name'] != 'measured'])
    assert '## Task affinity' not in format_markdown(report)
    assert write_affinity_plots(report, str(tmp_path)) == []
    assert not list(tmp_path.iterdir())


def test_one_measurement_plain_json(tmp_path):
    """One record: no standard error (None in the summary and the
    report's JSON, no ± in the table); a NaN affinity is None too."""
    single = record(5, 1.)
    single['affinity']['stage0']['cls']['det'] = math.nan
    write_affinity(tmp_path, TRAIN_TS, [single])
    summary = load_affinity_summary(str(tmp_path))
    assert summary['affinity_sem']['stage0']['cls']['det'] is None
    assert summary['affinity']['stage0']['cls']['det'] is None
    assert summary['suggestion'] is None
    json.dumps(summary, allow_nan=False)
    empty = tmp_path / 'empty'
    write_session(empty, TEST_TS, test={'mIoU': 1.})
    assert load_affinity_summary(str(empty)) is None


def test_compact():
    assert [compact(v) for v in (1.234e-3, -4.56e2, 0., 1.5, math.nan)
            ] == ['1.2e-3', '-4.6e2', '0', '1.5', 'nan']
