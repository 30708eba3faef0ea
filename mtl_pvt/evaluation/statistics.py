"""Means and Student-t intervals over seeds, and paired tests by seed.

A study trains each run over ``n`` seeds. What one seed gives is one draw:
the report shows the mean over the seeds with a Student-t confidence
interval of the mean::

    mean +- t_{n-1, (1 + confidence) / 2} * sd / sqrt(n)

with ``sd`` the sample standard deviation (``ddof=1``). One seed gives a
value, never an interval. Two runs trained with the same seeds are
compared by seed (:func:`paired_t_test`): the differences of seed ``s`` of
one against seed ``s`` of the other, so that what the seeds share (data
order, initialisation) cancels.
"""
import math
from numbers import Real
from typing import List, Sequence

#: Differences whose spread is below this fraction of the values compared
#: are identical: a - b rounds differently for each seed (10.1 - 10 vs
#: 12.1 - 12), and that rounding is not seed variation.
IDENTICAL_RTOL = 1e-10


def _values(values: Sequence, what: str = 'values') -> List[float]:
    """``values`` as floats; a ValueError for none or a non-finite one."""
    if isinstance(values, (str, bytes)) or not hasattr(values, '__len__'):
        raise ValueError(f'{what} must be a sequence of numbers, but got '
                         f'{values!r}')
    if len(values) == 0:
        raise ValueError(f'{what}: no values (an empty sequence)')
    bad = [
        v for v in values if isinstance(v, bool) or not isinstance(v, Real)
        or not math.isfinite(v)
    ]
    if bad:
        raise ValueError(f'{what} must be finite numbers, but got {bad} in '
                         f'{list(values)}')
    return [float(v) for v in values]


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or \
            not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), e.g. 0.95, but got '
                         f'{confidence!r}')


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student-t critical value ``t_{df, (1 + c) / 2}``.

    Args:
        confidence (float): The interval's confidence, in (0, 1).
        df (int): Degrees of freedom, >= 1.

    Returns:
        float: E.g. 2.7764 for 0.95 and 4 degrees of freedom.
    """
    from scipy.stats import t
    _check_confidence(confidence)
    return float(t.ppf((1 + confidence) / 2, df))


def _mean_sd(values: List[float]):
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean)**2 for v in values) / (n - 1))


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, standard deviation and Student-t interval of the mean.

    Args:
        values (Sequence[float]): One value per seed.
        confidence (float): Confidence of the interval. Defaults to 0.95.

    Returns:
        dict: ``n``, ``mean``, ``sd`` (``ddof=1``), ``sem`` (``sd /
        sqrt(n)``), ``ci`` (``(low, high)``), ``half_width`` (``t * sem``)
        and ``confidence``. With one value, ``sd``, ``sem``, ``ci`` and
        ``half_width`` are None: one seed gives no interval.

    Raises:
        ValueError: No values, a value that is not a finite number, or a
            confidence outside (0, 1).

    Examples:
        >>> s = summarize([1, 2, 3, 4, 5])
        >>> round(s['half_width'], 4)  # 2.7764 * sqrt(2.5) / sqrt(5)
        1.9632
    """
    values = _values(values)
    _check_confidence(confidence)
    n = len(values)
    mean, sd = _mean_sd(values)
    summary = dict(
        n=n,
        mean=mean,
        sd=None,
        sem=None,
        ci=None,
        half_width=None,
        confidence=confidence)
    if n > 1:
        sem = sd / math.sqrt(n)
        half = t_quantile(confidence, n - 1) * sem
        summary.update(
            sd=sd, sem=sem, ci=(mean - half, mean + half), half_width=half)
    return summary


def paired_t_test(a: Sequence[float],
                  b: Sequence[float],
                  confidence: float = 0.95) -> dict:
    """Two-sided paired t-test of ``a - b``, paired by position (seed).

    Identical differences (sd 0, e.g. a deterministic run and its baseline
    off by a constant) have no t distribution; they are handled as the
    limit of a vanishing spread: a non-zero mean difference gives ``t =
    +-inf`` and ``p = 0``, a zero one ``t = 0`` and ``p = 1``; the
    interval is the single point ``(mean, mean)``. Differences count as
    identical when they spread over less than :data:`IDENTICAL_RTOL` of
    the largest ``|a|`` or ``|b|`` (floating-point rounding of ``a - b``),
    and a mean difference that small counts as zero.

    Args:
        a (Sequence[float]): One value per seed, e.g. the multi-task run's.
        b (Sequence[float]): The same seeds, in the same order, e.g. the
            single-task baseline's.
        confidence (float): Confidence of the interval of the mean
            difference. Defaults to 0.95.

    Returns:
        dict: ``n``, ``differences`` (``a - b``), ``mean_diff``, ``sd``,
        ``sem``, ``ci``, ``half_width``, ``confidence``, ``t``, ``df`` (``n
        - 1``), ``p`` (two-sided) and ``identical`` (whether the
        differences were taken as identical).

    Raises:
        ValueError: ``a`` and ``b`` of different lengths, fewer than two
            pairs, or a value that is not a finite number.
    """
    from scipy.stats import t as student_t
    a, b = _values(a, 'a'), _values(b, 'b')
    if len(a) != len(b):
        raise ValueError(f'a paired test needs one b per a (paired by seed), '
                         f'but got {len(a)} values in a and {len(b)} in b')
    if len(a) < 2:
        raise ValueError('a paired test needs at least 2 pairs (seeds), but '
                         f'got {len(a)}: one seed gives no interval')
    _check_confidence(confidence)
    diffs = [x - y for x, y in zip(a, b)]
    n, df = len(diffs), len(diffs) - 1
    mean, sd = _mean_sd(diffs)
    scale = max(abs(v) for v in a + b)
    identical = max(diffs) - min(diffs) <= IDENTICAL_RTOL * scale
    if identical:
        sd = 0.
        if abs(mean) <= IDENTICAL_RTOL * scale:
            t, p = 0., 1.
        else:
            t, p = math.copysign(math.inf, mean), 0.
    sem = sd / math.sqrt(n)
    if not identical:
        t = mean / sem
        p = float(2 * student_t.sf(abs(t), df))
    half = t_quantile(confidence, df) * sem
    return dict(
        n=n,
        differences=diffs,
        mean_diff=mean,
        sd=sd,
        sem=sem,
        ci=(mean - half, mean + half),
        half_width=half,
        confidence=confidence,
        t=t,
        df=df,
        p=p,
        identical=identical)
