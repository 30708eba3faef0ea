"""Safe ``torch.load`` of MMEngine checkpoints under torch >= 2.6.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, whose
unpickler only rebuilds tensors, containers and the globals that
:func:`torch.serialization.add_safe_globals` allow-lists. MMEngine 0.10.7's
``CheckpointLoader`` calls ``torch.load`` without ``weights_only``, and a
Runner checkpoint holds more than weights: the ``message_hub`` keeps
``HistoryBuffer`` objects whose histories are numpy arrays, and runtime
information and metadata may hold numpy scalars. Resuming then fails with
``Unsupported global: ...HistoryBuffer``.

A ``HistoryBuffer`` also pickles its statistics methods, ``min``, ``max``,
``current`` and ``mean``; pickle protocol 2 (torch.save's) writes a method
as ``getattr(HistoryBuffer, 'min')``. ``builtins.getattr`` itself must not
be allow-listed (it would reach any attribute of any allowed object), so
that name is mapped to :func:`history_buffer_statistic`, which returns only
those four methods and refuses anything else.

Instead of turning safe loading off, :func:`allow_mmengine_checkpoint_globals`
allow-lists exactly the types such checkpoints hold; any other global in a
pickle is still refused.
"""
import pickle
from typing import Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

SafeGlobal = Union[Callable, Tuple[Callable, str]]

_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner: type, name: str) -> Callable:
    """``getattr`` restricted to the statistics of ``HistoryBuffer``.

    Stands in for ``builtins.getattr`` in weights-only unpickling.

    Args:
        owner (type): Must be ``HistoryBuffer``.
        name (str): One of 'min', 'max', 'current' and 'mean'.

    Returns:
        Callable: The method.

    Raises:
        pickle.UnpicklingError: For any other owner or name.
    """
    if owner is HistoryBuffer and name in _STATISTICS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'getattr({owner!r}, {name!r}) is not allowed in weights-only '
        'loading: only the HistoryBuffer statistics are')


def _numpy_globals() -> List[SafeGlobal]:
    """The numpy globals that pickled arrays, scalars and dtypes use.

    NumPy 2 moved ``numpy.core`` to ``numpy._core``; pickles written under
    NumPy 1 (e.g. released OpenMMLab checkpoints) still name the old module,
    so both names are mapped to the same functions.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') \
        else np.core.multiarray
    functions = [multiarray._reconstruct, multiarray.scalar]
    aliases = [(func, f'numpy.core.multiarray.{func.__name__}')
               for func in functions]
    aliases += [(func, f'numpy._core.multiarray.{func.__name__}')
                for func in functions]
    # Unpickling a dtype builds an instance of its DType class (e.g.
    # ``numpy.dtypes.Float64DType``); only plain numeric dtypes are allowed.
    dtype_classes = [
        type(np.dtype(code))
        for code in '?' + np.typecodes['AllInteger'] + np.typecodes['Float']
    ]
    return [np.ndarray, np.dtype] + aliases + sorted(
        set(dtype_classes), key=lambda cls: cls.__name__)


def mmengine_checkpoint_globals() -> List[SafeGlobal]:
    """The globals an MMEngine Runner checkpoint needs beyond torch's own.

    Returns:
        list: Classes and functions (or ``(function, name)`` pairs) for
        :func:`torch.serialization.add_safe_globals`.
    """
    return [HistoryBuffer,
            (history_buffer_statistic, 'builtins.getattr')] + _numpy_globals()


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the globals of MMEngine checkpoints for ``torch.load``.

    Idempotent: torch keeps the allow-list as a set. Does nothing on torch
    versions without ``add_safe_globals`` (< 2.4), which load unrestricted
    by default anyway.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(mmengine_checkpoint_globals())
