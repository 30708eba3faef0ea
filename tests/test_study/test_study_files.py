"""Every study file under configs/studies/ loads: its configs exist, its
arms have the same tasks and differ only in the sharing (and in the keys
it declares under ``vary``)."""
import glob
import os.path as osp

import pytest

from mtl_pvt.study import load_study
from mtl_pvt.study.plan import run_names

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDIES = sorted(glob.glob(osp.join(REPO, 'configs', 'studies', '*.py')))


@pytest.mark.parametrize('path', STUDIES, ids=osp.basename)
def test_study_file_loads(path, monkeypatch):
    monkeypatch.chdir(REPO)
    study = load_study(path)
    names = [entry['name'] for entry in run_names(study)]
    tasks = ('cls', 'det', 'seg')
    assert {f'stl_{t}' for t in tasks} <= set(names)
    assert any(n.endswith('share') for n in names)


def test_demo_seeds_share_the_work_dir(monkeypatch):
    """The three-seed demo study reuses `make demo`'s seed-0 runs."""
    monkeypatch.chdir(REPO)
    one = load_study(osp.join(REPO, 'configs/studies/demo.py'))
    three = load_study(osp.join(REPO, 'configs/studies/demo_3seeds.py'))
    assert one.work_dir == three.work_dir
    assert one.seeds == [0] and three.seeds == [0, 1, 2]
