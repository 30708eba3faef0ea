"""What the report is told: the study file of
``tools/analysis_tools/mtl_report.py`` and input sizes for FLOPs."""
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

STUDY_KEYS = ('stl', 'mtl', 'main_metrics', 'shapes')


def kind_names() -> List[str]:
    """The names of the registered task kinds, sorted: besides task names,
    the keys that input shapes may have."""
    from mtl_pvt.tasks import all_kinds
    return sorted(all_kinds())


def parse_shape(value) -> Tuple[int, int]:
    """``S``, ``'S'``, ``'H,W'`` or ``(H, W)`` -> ``(H, W)``."""
    sides = value
    if isinstance(value, str):
        try:
            sides = [int(side) for side in value.split(',')]
        except ValueError:
            sides = None
    elif isinstance(value, int) and not isinstance(value, bool):
        sides = [value]
    if isinstance(sides, (list, tuple)) and len(sides) == 1:
        sides = list(sides) * 2
    if not isinstance(sides, (list, tuple)) or len(sides) != 2 or not all(
            isinstance(s, int) and s > 0 for s in sides):
        raise ValueError(f'an input shape is SIZE, "H,W" or (H, W), not '
                         f'{value!r}')
    return tuple(sides)


def load_study(path: str) -> dict:
    """Read a study file (``.py`` config or ``.json``).

    Examples:
        >>> # study.py
        >>> stl = dict(cls='work_dirs/cls', det='work_dirs/retinanet',
        ...            seg='work_dirs/semfpn')
        >>> mtl = dict(full_share='work_dirs/full_share')
        >>> main_metrics = dict(
        ...     det=dict(metric='coco/bbox_mAP_50', higher_is_better=True))
        >>> shapes = dict(cls=64, det=(128, 128), seg='128,128')

    Args:
        path (str): The file; relative work dirs in it are relative to the
            current directory.

    Returns:
        dict: ``stl``, ``mtl``, ``main_metrics`` and ``shapes`` (task ->
        ``(H, W)``), empty where not given.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: An unknown key, or a value that is no dict.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'study file {path!r} does not exist')
    cfg = Config.fromfile(path).to_dict()
    unknown = sorted(set(cfg) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f'study file {path}: unknown key(s) {unknown}; the '
                         f'keys are {list(STUDY_KEYS)}')
    study = {key: cfg.get(key) or {} for key in STUDY_KEYS}
    for key, value in study.items():
        if not isinstance(value, dict):
            raise ValueError(f'study file {path}: {key} must be a dict, but '
                             f'got {value!r}')
    study['shapes'] = {t: parse_shape(s) for t, s in study['shapes'].items()}
    return study


def check_shapes(shapes: Optional[Mapping],
                 tasks: Sequence[str]) -> Dict[str, Tuple[int, int]]:
    """Input shapes keyed by task, kind or ``''``, parsed
    (:func:`parse_shape`).

    Raises:
        ValueError: A bad shape, or a key that is neither one of ``tasks``
            nor a kind name.
    """
    shapes = {key: parse_shape(s) for key, s in (shapes or {}).items()}
    kinds = kind_names()
    unknown = sorted(set(shapes) - {''} - set(tasks) - set(kinds))
    if unknown:
        raise ValueError(f'input shapes given for {unknown}, which are '
                         f'neither tasks {list(tasks)} nor {", ".join(kinds)}')
    return shapes
