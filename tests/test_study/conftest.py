"""Fixtures of the study tests: configs dumped without yapf, tiny data."""
import pytest

from mtl_pvt.testing.demo_runs import make_tiny_demo_data


@pytest.fixture
def plain_config_text(monkeypatch):
    """``Config.pretty_text`` without yapf's formatting (seconds per demo
    config on a loaded machine): the same valid Python, unformatted."""
    import mmengine.config.config as mmengine_config
    monkeypatch.setattr(mmengine_config, 'FormatCode', lambda text, **kwargs:
                        (text, None))


@pytest.fixture(scope='module')
def tiny_demo_root(tmp_path_factory):
    """A folder with a tiny ``data/demo`` (a few images per task): the
    working directory of a run, so the configs' relative roots point at
    it."""
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('study_demo')))
