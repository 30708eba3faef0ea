"""A small copy of the demo data for the demo multi-task tests, which
train in this process on one thread, each config text formatted once."""
import pytest
import torch

from mtl_pvt.demo import make_demo_data
from mtl_pvt.testing.config_text import memoize_config_formatting


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Train on one CPU thread, as the tool subprocesses do
    (``OMP_NUM_THREADS=1``): on a machine of few cores that other processes
    keep busy, the threads of a tiny model's operators wait for each other
    (a training step up to 30 times slower than on one thread). The runs a
    test compares all run on the same thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module', autouse=True)
def format_config_text_once():
    """A Runner formats its config with yapf when it is built, dumps it and
    at every checkpoint, each time from the same text: once is enough (the
    same formatted text)."""
    undo = memoize_config_formatting()
    yield
    undo()


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
