"""A small copy of the demo data for the demo multi-task tests."""
import pytest

from mtl_pvt.utils.demo_data import make_demo_data


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    """A folder with ``data/demo`` (a few images per task): the working
    directory of a run, so the configs' relative roots point at it."""
    root = tmp_path_factory.mktemp('mtl_demo')
    make_demo_data(
        str(root / 'data/demo'),
        cls_train_per_class=3,
        cls_val_per_class=2,
        det_train=6,
        det_val=4,
        seg_train=6,
        seg_val=4)
    return root
