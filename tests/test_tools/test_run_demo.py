"""tools/misc/run_demo.py: the order of the study and skipping of runs."""
import importlib.util
import json
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(REPO, 'tools/misc/run_demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finished_runs_are_skipped(tmp_path, monkeypatch):
    tool = load_tool()
    trained, reported = [], []
    monkeypatch.setattr(tool, 'REPO', str(tmp_path))
    monkeypatch.setattr(tool.subprocess, 'run', lambda *a, **k: None)
    monkeypatch.setattr(
        tool, 'train_and_test',
        lambda config, work_dir, step: trained.append(config) or 'x.pth')
    monkeypatch.setattr(tool, 'report',
                        lambda out, dirs: reported.append(dict(dirs)))
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
    ]
    done = json.loads(
        (tmp_path / 'study' / 'mtl_no_share' / tool.DONE).read_text())
    assert done['checkpoint'] == 'x.pth'
    assert set(reported[0]) == {(g, n) for g, n, _ in tool.RUNS}
    # a second call trains nothing
    trained.clear()
    tool.main(['--out', str(tmp_path / 'study')])
    assert trained == []
