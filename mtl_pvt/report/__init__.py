"""The offline report of a multi-task study, read from the runs' work dirs.

One stage a module: :mod:`.runs` reads a run's work dir (test results,
training log, config, model size), :mod:`.table` compares the MTL runs
with the STL baselines (main metrics, delta-m), :mod:`.formats` writes
Markdown, CSV and JSON, :mod:`.plots` draws the figures; a section after the
table is one file implementing :class:`~.section.ReportSection`
(:mod:`.affinity`, the task affinity); :mod:`.study` is the report of a
multi-seed study (``tools/study.py``), with :mod:`.study_formats` and
:mod:`.study_plots`. Nothing here is imported by training or validation.
"""
from .affinity import (TaskAffinitySection, format_affinity,
                       load_affinity_summary, train_grad_cos,
                       write_affinity_plots)
from .formats import csv_rows, format_markdown, write_report
from .inputs import kind_names, load_study, parse_shape
from .plots import plot_delta_m, plot_losses, plot_metrics
from .runs import (config_kinds, find_config, find_test_results, load_run,
                   loss_curve, read_train_log, run_complexity,
                   tested_checkpoint, train_budget, train_times)
from .section import ReportSection, load_sections, report_sections
from .study import build_study_report, write_study_report
from .study_formats import format_study_markdown, study_csv_rows
from .study_plots import plot_study_delta_m, plot_study_metrics
from .table import build_report, default_main_metric, parse_main_metrics

__all__ = [
    'ReportSection', 'TaskAffinitySection', 'load_sections', 'report_sections',
    'build_report', 'build_study_report', 'config_kinds', 'csv_rows',
    'default_main_metric', 'find_config', 'find_test_results',
    'format_affinity', 'format_markdown', 'format_study_markdown',
    'kind_names', 'load_affinity_summary', 'load_run', 'load_study',
    'loss_curve', 'parse_main_metrics', 'parse_shape', 'plot_delta_m',
    'plot_losses', 'plot_metrics', 'plot_study_delta_m', 'plot_study_metrics',
    'read_train_log', 'run_complexity', 'study_csv_rows', 'tested_checkpoint',
    'train_budget', 'train_grad_cos', 'train_times', 'write_affinity_plots',
    'write_report', 'write_study_report'
]
