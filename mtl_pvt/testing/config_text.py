"""Format a config's text once per process, however often it is asked for.

MMEngine formats the whole config with yapf (``Config.pretty_text``, about
1.5 s for a demo multi-task config on a slow CPU) when a Runner is built
(the logged config, ``RuntimeInfoHook``'s meta), when it dumps the config
and at every checkpoint, each time from the same text. A tiny test run
spends half its time there. :func:`memoize_config_formatting` makes
MMEngine's ``FormatCode`` remember its answers: the same text gets the same
formatted text (yapf is a pure function of text and style), a new text is
formatted anew, and a text yapf rejects raises again, every time.
"""
from typing import Callable, Dict, Tuple

import mmengine.config.config as mmengine_config


def _key(args: tuple, kwargs: dict) -> Tuple:
    """A hashable key of a call (``style_config`` is a dict)."""
    items = []
    for name, value in sorted(kwargs.items()):
        if isinstance(value, dict):
            value = tuple(sorted(value.items()))
        items.append((name, value))
    return args, tuple(items)


def memoize_config_formatting() -> Callable[[], None]:
    """Make ``mmengine.config.Config.pretty_text`` reuse the yapf result of
    a text it has formatted before (in this process and its forks).

    Returns:
        Callable[[], None]: Undoes it (back to the ``FormatCode`` of
        before).
    """
    format_code = mmengine_config.FormatCode
    cache: Dict[Tuple, tuple] = {}

    def memoized(*args, **kwargs):
        key = _key(args, kwargs)
        try:
            hash(key)
        except TypeError:  # a style of unhashable values: not remembered
            return format_code(*args, **kwargs)
        if key not in cache:
            cache[key] = format_code(*args, **kwargs)
        return cache[key]

    mmengine_config.FormatCode = memoized

    def undo() -> None:
        mmengine_config.FormatCode = format_code

    return undo
