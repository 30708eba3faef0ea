"""A section of the multi-task report: one file, one protocol.

The report (``tools/analysis_tools/mtl_report.py``:
:func:`~.table.build_report`, then :func:`~.formats.write_report`) is a
table of every run's metrics, parameters, FLOPs and times, followed by its
sections. A section is a
:class:`ReportSection` registered in ``REPORT_SECTIONS`` (one file: what
it reads, writes and draws); every registered section takes part, in the
order of registration::

    load_run(work_dir)       -> run[key] for key in section.keys
                                (section.load: the run's own files)
    build_report(...)        -> each MTL row keeps them (report.json)
    format_markdown(report)  -> ... table ..., section.markdown(report)
    write_report(report)     -> ... files ..., section.plots(report, out)

:class:`~.affinity.TaskAffinitySection` (the lookahead affinity, the
training gradient cosines and the suggested tree) is the package's one.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mtl_pvt.registry import REPORT_SECTIONS


class ReportSection:
    """Base of the report's sections.

    A subclass names the keys it adds to each multi-task run
    (:attr:`keys`) and implements :meth:`load`; :meth:`markdown` and
    :meth:`plots` default to nothing. Single-task runs have no sections,
    and the study report over seeds (:mod:`.study`) reads none.
    """

    #: the keys of a run (and of its row in ``report.json``) it fills
    keys: Tuple[str, ...] = ()

    def load(self, work_dir: str, records: Sequence[dict]) -> Dict[str, Any]:
        """What the section reads of one multi-task run.

        Args:
            work_dir (str): The run's work dir.
            records (Sequence[dict]): Its training log, one dict per
                logged step (``vis_data/scalars.json``, all sessions).

        Returns:
            dict: A value (JSON-serialisable, None without data) for each
            of :attr:`keys`.
        """
        raise NotImplementedError

    def markdown(self, report: dict) -> Optional[str]:
        """Its Markdown after the report's table (a ``##`` heading and
        what follows), None to add nothing."""
        return None

    def plots(self, report: dict, out_dir: str) -> List[str]:
        """Draw its figures into ``out_dir``; their paths."""
        return []


def report_sections() -> List[ReportSection]:
    """An instance of every registered section, in registration order."""
    REPORT_SECTIONS.import_from_location()
    return [cls() for cls in REPORT_SECTIONS.module_dict.values()]


def load_sections(work_dir: str, records: Sequence[dict]) -> Dict[str, Any]:
    """Every section's data of one multi-task run.

    Raises:
        KeyError: A section returned other keys than its :attr:`keys`.
    """
    data: Dict[str, Any] = {}
    for section in report_sections():
        got = section.load(work_dir, records)
        if set(got) != set(section.keys):
            raise KeyError(f'report section {type(section).__name__} '
                           f'returned keys {sorted(got)}, not its keys '
                           f'{sorted(section.keys)}')
        data.update(got)
    return data


def section_keys() -> List[str]:
    """The run keys of every registered section."""
    return [key for section in report_sections() for key in section.keys]
