"""Dataset metainfo as plain Python data, for checkpoints."""
from collections.abc import Mapping
from typing import Any

_SCALARS = (bool, int, float, str)


def to_plain_meta(obj: Any) -> Any:
    """``obj`` made of dicts, lists, tuples, strings and numbers only.

    A dataset's metainfo goes into checkpoints as ``meta.dataset_meta``
    (MMEngine's Runner saves the train dataset's), and
    ``torch.load(weights_only=True)`` refuses other types. Arrays, tensors
    and numpy scalars become Python lists and numbers; anything else its
    ``str()``. Keys that are strings, numbers, booleans or None stay as
    they are (they are what JSON writes, too): mmseg's ``label_map`` maps
    label ids (ints) to label ids, and its readers look them up as ints.
    Other keys become their ``str()``.

    Args:
        obj (Any): A metainfo dict, or a value in one.

    Returns:
        Any: The plain copy of ``obj``.
    """
    if obj is None or isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, Mapping):
        return {_plain_key(k): to_plain_meta(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        plain = (to_plain_meta(v) for v in obj)
        return tuple(plain) if isinstance(obj, tuple) else list(plain)
    if hasattr(obj, 'tolist'):  # numpy arrays and scalars, tensors
        return obj.tolist()
    return str(obj)


def _plain_key(key: Any) -> Any:
    """A dict key of :func:`to_plain_meta`: a scalar or None, else str."""
    key = to_plain_meta(key)
    return key if key is None or isinstance(key, _SCALARS) else str(key)
