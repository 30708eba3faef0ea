"""tools/analysis_tools/suggest_branching.py on hand-made affinity logs."""
import json
import os
import os.path as osp

import pytest

from mtl_pvt.testing.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/demo/mtl/pvtv2_b0_full_share_demo.py')
PARTIAL = osp.join(REPO, 'configs/demo/mtl/pvtv2_b0_partial_share_s2_demo.py')
TASKS = ['cls', 'det', 'seg']


def tool():
    return load_tool('tools/analysis_tools/suggest_branching.py')


def record(step, sign):
    """cls hurts det and seg from stage 2 on (``sign`` -1); det and seg
    help each other everywhere."""
    affinity = {}
    for stage in range(4):
        s = sign if stage >= 2 else 1.
        affinity[f'stage{stage}'] = {
            'cls': dict(cls=.5, det=s * .02, seg=s * .01),
            'det': dict(cls=s * .03, det=.4, seg=.05 + step * 1e-3),
            'seg': dict(cls=s * .01, det=.04, seg=.3),
        }
    affinity['backbone'] = affinity['stage0']
    return dict(
        step=step,
        loss=dict(cls=1., det=2., seg=3.),
        affinity=affinity,
        grad_cos={
            f'stage{s}': {
                'cls-det': 0.,
                'cls-seg': 0.,
                'det-seg': .5
            }
            for s in range(4)
        },
        grad_norm={
            f'stage{s}': dict(cls=1., det=1., seg=1.)
            for s in range(4)
        },
        lr={f'stage{s}': 1e-3
            for s in range(4)})


def write_run(root, tasks=TASKS, stage_groups=None, steps=(0, 100, 200)):
    session = osp.join(root, '20261202_000000')
    os.makedirs(session, exist_ok=True)
    data = dict(
        tasks=list(tasks),
        stage_groups=stage_groups or [[list(tasks)]] * 4,
        interval=100,
        lr=None,
        max_norm=35.,
        records=[record(s, -1.) for s in steps])
    with open(osp.join(session, 'affinity.json'), 'w') as f:
        json.dump(data, f)
    return str(root)


def test_suggests_and_writes_a_config_that_builds(tmp_path, capsys):
    run = write_run(tmp_path / 'run')
    out = str(tmp_path / 'suggested.py')
    result = tool().main([CONFIG, run, '--out', out])
    printed = capsys.readouterr().out
    assert result['stage_groups'] == [[TASKS]] * 2 + [[['cls'], ['det', 'seg']]
                                                      ] * 2
    assert 'stage 2: [cls] [det seg]' in printed
    assert 'mean of 3 measurement(s) at iterations [0, 100, 200]' in printed
    # stage 2 and 3 of b0: the extra copies' parameters
    assert result['extra_params'] == sum(result['stage_params'][2:])
    assert result['backbone_params'] == sum(result['stage_params']) + \
        result['extra_params']
    text = open(out).read()
    assert "[['cls'], ['det', 'seg']]" in text
    assert f'wrote {out} (builds' in printed
    # a budget of one extra stage-3 copy
    result = tool().main([
        CONFIG, run, '--out', out, '--max-extra-params',
        str(result['stage_params'][3])
    ])
    assert result['stage_groups'][2] == [TASKS]


def test_noise_splits_nothing(tmp_path):
    """Means within two standard errors of 0 count as 0: signs that flip
    between measurements do not split the backbone."""
    root = tmp_path / 'run'
    write_run(root)
    path = osp.join(root, '20261202_000000', 'affinity.json')
    data = json.load(open(path))
    data['records'].append(record(300, 1.))
    data['records'].append(record(400, 1.))
    json.dump(data, open(path, 'w'))
    result = tool().main([CONFIG, str(root), '--out', str(tmp_path / 's.py')])
    assert result['stage_groups'] == [[TASKS]] * 4
    result = tool().main(
        [CONFIG,
         str(root), '--z', '0', '--out',
         str(tmp_path / 's.py')])
    assert result['stage_groups'][3] == [['cls'], ['det', 'seg']]


def test_log_without_affinity_data(tmp_path):
    os.makedirs(tmp_path / 'run' / '20261202_000000')
    with pytest.raises(SystemExit, match="no affinity data in .*TaskAffinity"):
        tool().main([CONFIG, str(tmp_path / 'run')])


def test_budget_no_tree_meets(tmp_path):
    groups = [[TASKS], [TASKS], [['cls'], ['det', 'seg']],
              [['cls'], ['det', 'seg']]]
    run = write_run(tmp_path / 'run', stage_groups=groups)
    with pytest.raises(SystemExit, match='no tree meets the budget'):
        tool().main([PARTIAL, run, '--max-branches', '1'])


def test_run_of_other_tasks(tmp_path):
    run = write_run(tmp_path / 'run', tasks=['cls', 'det', 'depth'])
    with pytest.raises(
            SystemExit, match=r"measured tasks \['cls', 'det', 'depth'\]"):
        tool().main([CONFIG, run])


def test_not_a_multi_task_config(tmp_path):
    run = write_run(tmp_path / 'run')
    config = osp.join(REPO, 'configs/demo/stl/pvtv2_b0_cls_demo.py')
    with pytest.raises(SystemExit, match='not a multi-task config'):
        tool().main([config, run])
