"""Markdown pieces that the report's sections share."""
import os.path as osp
from typing import List, Sequence


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
