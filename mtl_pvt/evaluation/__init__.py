from .delta_m import delta_m, parse_delta_m, relative_changes
from .report import build_report, load_study, write_report

__all__ = [
    'build_report', 'delta_m', 'load_study', 'parse_delta_m',
    'relative_changes', 'write_report'
]
