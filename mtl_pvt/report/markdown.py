"""Markdown pieces that the report's sections share: tables, numbers,
task pairs."""
import math
import os.path as osp
from typing import List, Mapping, Optional, Sequence


def markdown_table(header: Sequence[str],
                   rows: Sequence[Sequence[str]],
                   numbers: bool = False) -> str:
    """A Markdown table, ``|`` in cells escaped; with ``numbers``, all
    columns but the first right-aligned."""

    def line(cells):
        return '| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |'

    align = ['---'] + ['---:' if numbers else '---'] * (len(header) - 1)
    return '\n'.join([
        line(header), '| ' + ' | '.join(align) + ' |', *(line(r) for r in rows)
    ])


SOURCE_COLUMNS = ('Work dir', 'Test results', 'Checkpoint tested')


def source_cells(run: dict) -> List[str]:
    """Cells of a run's work dir, test results file and checkpoint."""
    checkpoint = run['checkpoint'] and osp.basename(run['checkpoint'])
    test_file = osp.relpath(run['test_file'], run['work_dir'])
    return [f'`{run["work_dir"]}`', f'`{test_file}`', f'`{checkpoint}`']


def json_safe(value):
    """Nested dicts and lists with NaN and infinities as None."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sci(value: Optional[float], digits: int = 3, sign: bool = True) -> str:
    """``+1.234e-03`` (``-`` for None)."""
    if value is None:
        return '-'
    return format(value, f'{"+" if sign else ""}.{digits}e')


def compact(value: Optional[float]) -> str:
    """Compact scientific notation: ``1.2e-3``, ``-4.5e+2`` -> ``-4.5e2``,
    ``0``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'nan'
    if value == 0:
        return '0'
    mantissa, _, exponent = format(value, '.1e').partition('e')
    exponent = int(exponent)
    return mantissa if exponent == 0 else f'{mantissa}e{exponent}'


def mean_sem(mean: Optional[float],
             sem: Optional[float],
             fixed: bool = False) -> str:
    """``+1.234e-03 ± 5.6e-04``; ``fixed``: ``+0.123 ± 0.045``."""
    if mean is None:
        return '-'
    text = f'{mean:+.3f}' if fixed else sci(mean)
    if sem is None:
        return text
    return f'{text} ± {sem:.3f}' if fixed else \
        f'{text} ± {sci(sem, 1, False)}'


def ordered_pairs(tasks: Sequence[str]) -> List[tuple]:
    """``(i, j)`` for ``i != j``, then ``(i, i)``."""
    return [(i, j) for i in tasks for j in tasks if i != j] + \
        [(i, i) for i in tasks]


def pair_keys(tasks: Sequence[str], matrices: Sequence[Mapping]) -> List[str]:
    """The ``'a-b'`` keys found in ``matrices``, in the order of
    ``tasks`` (unknown tasks last)."""
    index = {t: n for n, t in enumerate(tasks)}
    found: List[str] = []
    for matrix in matrices:
        found += [k for k in matrix if k not in found]

    def rank(key):
        a, _, b = key.partition('-')
        return index.get(a, len(index)), index.get(b, len(index)), key

    return sorted(found, key=rank)
