"""``memoize_config_formatting``: the same config text, formatted once."""
import mmengine.config.config as mmengine_config
import pytest
from mmengine.config import Config

from mtl_pvt.testing.config_text import memoize_config_formatting


def test_same_text_and_errors_as_yapf(monkeypatch):
    cfg = Config(dict(model=dict(type='M', depths=[2, 2]), lr=0.1))
    other = Config(dict(model=dict(type='M', depths=[2, 3]), lr=0.1))
    expected = cfg.pretty_text, other.pretty_text
    bad = Config(dict(hook=dict(type=object)))  # no Python text for it
    calls = []
    original = mmengine_config.FormatCode

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(mmengine_config, 'FormatCode', counting)
    undo = memoize_config_formatting()
    try:
        assert (cfg.pretty_text, other.pretty_text) == expected
        assert (cfg.pretty_text, other.pretty_text) == expected
        assert len(calls) == 2  # each text formatted once
        for _ in range(2):  # a text yapf rejects raises every time
            with pytest.raises(SyntaxError, match='Failed to format'):
                bad.pretty_text
        assert len(calls) == 4
    finally:
        undo()
    assert mmengine_config.FormatCode is counting
