"""The statistics of the study report: each MTL arm against its matched
STL runs (paired by seed: per-seed delta-m, paired t-tests of each task's
main metric) and against the reference runs' means (not paired)."""
import math
from typing import Dict, Mapping, Sequence

from mtl_pvt.evaluation.delta_m import multi_metric_delta_m
from mtl_pvt.evaluation.statistics import paired_t_test, summarize


def baselines(runs: Mapping[str, dict], kind: str) -> Dict[str, str]:
    """Task -> the name of its run of ``kind`` (``'stl'`` or ``'ref'``)."""
    return {r['task']: n for n, r in runs.items() if r['kind'] == kind}


def summary(values: Sequence[float], confidence: float) -> dict:
    return dict(values=list(values), **summarize(values, confidence))


def _paired(a: Sequence[float], b: Sequence[float], confidence: float) -> dict:
    """:func:`paired_t_test`, or the one difference of a single seed."""
    if len(a) > 1:
        return paired_t_test(a, b, confidence)
    diff = a[0] - b[0]
    return dict(
        n=1,
        differences=[diff],
        mean_diff=diff,
        sd=None,
        sem=None,
        ci=None,
        half_width=None,
        confidence=confidence,
        t=None,
        df=None,
        p=None,
        identical=None)


def _seed_metrics(runs: Sequence[dict], index: int) -> Dict[str, float]:
    """The ``index``-th seed's metrics of ``runs``, keyed
    ``'<task>/<metric>'``."""
    return {
        key: values[index]
        for run in runs
        for key, values in run['values'].items()
    }


def _delta_m_summary(arm: dict, references: Sequence[Dict[str, float]],
                     spec: Mapping, confidence: float) -> dict:
    """Delta-m of each of the arm's seeds against ``references[seed]``,
    and its summary; the same for each task's change."""
    arm_spec = {t: spec[t] for t in arm['tasks']}
    per_seed = []
    for i, (seed, ref) in enumerate(zip(arm['seeds'], references)):
        try:
            per_seed.append(
                multi_metric_delta_m(_seed_metrics([arm], i), ref, arm_spec))
        except ValueError as error:  # a baseline metric of 0
            raise ValueError(f"MTL arm {arm['name']!r}, seed {seed}: delta-m "
                             f'cannot be computed: {error}') from error
    return dict(
        delta_m=summary([d for d, _ in per_seed], confidence),
        task_changes={
            t: summary([c[t] for _, c in per_seed], confidence)
            for t in arm['tasks']
        })


def compare_stl(arm: dict, runs: Mapping[str, dict], spec: Mapping,
                confidence: float) -> dict:
    """An arm against the matched STL runs, seed by seed."""
    stl = baselines(runs, 'stl')
    bases = {t: runs[stl[t]] for t in arm['tasks']}
    references = [
        _seed_metrics(bases.values(), i) for i in range(len(arm['seeds']))
    ]
    tests = {}
    for task, base in bases.items():
        main = spec[task][0]
        key = f'{task}/{main["metric"]}'
        tests[task] = dict(
            metric=main['metric'],
            higher_is_better=main['higher_is_better'],
            baseline=base['name'],
            **_paired(arm['values'][key], base['values'][key], confidence))
    return dict(
        arm=arm['name'],
        against='stl',
        baselines={
            t: b['name']
            for t, b in bases.items()
        },
        seeds=list(arm['seeds']),
        tests=tests,
        **_delta_m_summary(arm, references, spec, confidence))


def compare_ref(arm: dict, runs: Mapping[str, dict], spec: Mapping,
                confidence: float) -> dict:
    """An arm against the reference runs' means (not paired)."""
    ref = baselines(runs, 'ref')
    missing = [t for t in arm['tasks'] if t not in ref]
    result = dict(
        arm=arm['name'],
        against='ref',
        baselines={t: ref[t]
                   for t in arm['tasks'] if t in ref},
        missing=missing)
    if missing:
        return result
    means = {
        key: math.fsum(values) / len(values)
        for t in arm['tasks']
        for key, values in runs[ref[t]]['values'].items()
    }
    result.update(
        reference_values=means,
        **_delta_m_summary(arm, [means] * len(arm['seeds']), spec, confidence))
    return result
