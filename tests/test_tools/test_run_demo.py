"""tools/misc/run_demo.py: the demo study's steps, in order."""
import os.path as osp

from mtl_pvt.testing.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_steps(tmp_path, monkeypatch, capsys):
    tool = load_tool('tools/misc/run_demo.py')
    study = tmp_path / 'study.py'
    study.write_text(f"_base_ = '{REPO}/configs/studies/demo.py'\n"
                     f"work_dir = '{tmp_path}/wd'\n")
    (tmp_path / 'wd' / 'report').mkdir(parents=True)
    (tmp_path / 'wd' / 'report' / 'report.md').write_text('# the report')
    calls = []
    monkeypatch.setattr(tool, 'tool', lambda *args: calls.append(args))
    tool.main(['--study', str(study)])
    measured = f'{tmp_path}/wd/full_share/seed_0'
    assert calls == [
        ('tools/misc/make_demo_data.py', '--out', 'data/demo'),
        ('tools/study.py', 'run', str(study)),
        ('tools/analysis_tools/suggest_branching.py',
         f'{measured}/full_share.py', measured, '--out',
         f'{tmp_path}/wd/suggested_branching.py', '--json',
         f'{measured}/suggested_branching.json'),
        ('tools/study.py', 'report', str(study)),
    ]
    assert '# the report' in capsys.readouterr().out
