"""tools/misc/run_demo.py: the order of the study and skipping of runs."""
import json

from mtl_pvt.models.backbones.shared_pvtv2 import share_stages_groups
from mtl_pvt.testing.tools import load_tool


def load_run_demo():
    return load_tool('tools/misc/run_demo.py')


def test_finished_runs_are_skipped(tmp_path, monkeypatch):
    tool = load_run_demo()
    trained, reported = [], []
    monkeypatch.setattr(tool, 'REPO', str(tmp_path))
    monkeypatch.setattr(tool.subprocess, 'run', lambda *a, **k: None)
    monkeypatch.setattr(
        tool, 'train_and_test',
        lambda config, work_dir, step: trained.append(config) or 'x.pth')
    monkeypatch.setattr(tool, 'report',
                        lambda out, dirs: reported.append(dict(dirs)))
    # the full-sharing run's affinities suggest splitting cls at stage 3
    tree = [[tool.TASKS]] * 3 + [[['cls'], ['det', 'seg']]]
    suggested = []
    monkeypatch.setattr(
        tool, 'suggest',
        lambda out, measured, step: suggested.append(measured) or
        ('study/suggested_branching.py', tree))
    # the three STL runs finished before
    for name in ('cls', 'det', 'seg'):
        work_dir = tmp_path / 'study' / f'stl_{name}'
        work_dir.mkdir(parents=True)
        (work_dir / tool.DONE).write_text('{}')
    for group, name, _ in tool.RUNS:
        if group == 'mtl':
            (tmp_path / 'study' / f'mtl_{name}').mkdir(parents=True)
    tool.main(['--out', str(tmp_path / 'study')])
    assert trained == [
        config for group, _, config in tool.RUNS if group == 'mtl'
    ] + ['study/suggested_branching.py']
    assert suggested == [str(tmp_path / 'study' / 'mtl_full_share')]
    done = json.loads(
        (tmp_path / 'study' / 'mtl_no_share' / tool.DONE).read_text())
    assert done['checkpoint'] == 'x.pth'
    assert set(
        reported[0]) == {(g, n)
                         for g, n, _ in tool.RUNS} | {('mtl', 'suggested')}
    # a second call trains nothing
    trained.clear()
    tool.main(['--out', str(tmp_path / 'study')])
    assert trained == []
    # a suggested tree that is a hand-picked sharing is not trained again
    tree[:] = share_stages_groups(tool.TASKS, 2)
    (tmp_path / 'study' / 'mtl_suggested' / tool.DONE).unlink()
    tool.main(['--out', str(tmp_path / 'study')])
    assert trained == []
    assert ('mtl', 'suggested') not in reported[-1]
