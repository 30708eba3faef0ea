"""From per-stage task affinities to a ``stage_groups`` task tree.

A tree gives, for each of the backbone's stages, a partition of the tasks
into groups that share a copy of the stage; a group may only split from
one stage to the next (``SharedPVTv2``'s rule). Its *score* is the
affinity kept inside groups::

    score = sum over stages s, groups g of s, tasks i != j in g
            of Z(i -> j, s)

so grouping tasks whose updates help each other raises it and grouping
tasks that hurt each other lowers it: with no budget, the best tree splits
exactly the pairs of negative affinity. A budget bounds what splitting
costs: the backbone parameters beyond full sharing (each extra copy of
stage s costs that stage's parameters) or the number of branches (copies
of the last stage).

:func:`suggest_tree` searches every tree exhaustively (a dynamic program
over stages that keeps, per partition, the best score at each cost) for
up to :data:`MAX_EXHAUSTIVE` tasks; beyond, it is greedy: stage by stage,
each group of the stage before is split by agglomerating its tasks
(average linkage on the stage's symmetric affinity) while a merge keeps
the score from falling, then the budget is met by undoing the splits of
the smallest gain first. The greedy tree is a good tree, not a proven best.
"""
import itertools
import math
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

Partition = Tuple[Tuple[str, ...], ...]
Tree = List[List[List[str]]]
MAX_EXHAUSTIVE = 8


def set_partitions(items: Sequence[str]):
    """Every partition of ``items`` (groups keep the items' order)."""
    items = list(items)
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield ((first, ), ) + partition
        for k in range(len(partition)):
            yield partition[:k] + ((first, ) + partition[k], ) + \
                partition[k + 1:]


def _canonical(partition, order) -> Partition:
    rank = {t: k for k, t in enumerate(order)}
    groups = [tuple(sorted(g, key=rank.get)) for g in partition]
    return tuple(sorted(groups, key=lambda g: rank[g[0]]))


def refinements(partition: Partition, order: Sequence[str]):
    """Every partition that splits the groups of ``partition`` further
    (``partition`` itself included)."""
    per_group = [list(set_partitions(g)) for g in partition]
    for choice in itertools.product(*per_group):
        yield _canonical([g for part in choice for g in part], order)


def group_score(group: Sequence[str],
                affinity: Dict[str, Dict[str, float]]) -> float:
    """Sum of ``Z(i -> j)`` over ordered pairs of distinct tasks of
    ``group``.

    Raises:
        KeyError: A pair was not measured.
    """
    total = 0.
    for i in group:
        for j in group:
            if i != j:
                value = affinity.get(i, {}).get(j)
                if value is None or math.isnan(value):
                    raise KeyError((i, j))
                total += value
    return total


def tree_score(tree: Sequence[Sequence[Sequence[str]]],
               affinities: Sequence[Dict[str, Dict[str, float]]]) -> float:
    """The score of ``tree`` under per-stage ``affinities``."""
    return sum(
        group_score(g, a) for groups, a in zip(tree, affinities)
        for g in groups)


def extra_params(tree: Sequence[Sequence[Sequence[str]]],
                 stage_params: Sequence[int]) -> int:
    """Backbone parameters of ``tree`` beyond full sharing."""
    return sum((len(groups) - 1) * p for groups, p in zip(tree, stage_params))


def _as_tree(chain: Sequence[Partition]) -> Tree:
    return [[list(g) for g in partition] for partition in chain]


def suggest_tree(
        tasks: Sequence[str],
        affinities: Sequence[Dict[str, Dict[str, float]]],
        stage_params: Sequence[int],
        max_extra_params: Optional[float] = None,
        max_branches: Optional[int] = None,
        coarsest: Optional[Sequence[Sequence[Sequence[str]]]] = None) -> dict:
    """The tree of the highest score within the budget.

    Args:
        tasks (Sequence[str]): Task names.
        affinities (Sequence[dict]): Per stage, ``{i: {j: Z(i -> j)}}``
            (averaged over a run).
        stage_params (Sequence[int]): Parameters of one copy of each stage.
        max_extra_params (float, optional): At most this many backbone
            parameters beyond full sharing. Defaults to None (no bound).
        max_branches (int, optional): At most this many copies of the last
            stage. Defaults to None (no bound).
        coarsest (tree, optional): Groups that may not be merged further:
            the tree of the measured run (pairs it did not share have no
            affinity). Defaults to full sharing.

    Returns:
        dict: ``stage_groups`` (the tree), ``score``, ``extra_params`` and
        ``branches``; ties go to the tree with fewer parameters.

    Raises:
        ValueError: No tree meets the budget, or an affinity is missing
            for a pair that ``coarsest`` shares.
    """
    tasks = list(tasks)
    num_stages = len(affinities)
    if len(stage_params) != num_stages:
        raise ValueError(f'{len(stage_params)} stage sizes for '
                         f'{num_stages} stages of affinities')
    if max_branches is not None and max_branches < 1:
        raise ValueError(f'max_branches must be >= 1, got {max_branches}')
    if max_extra_params is not None and max_extra_params < 0:
        raise ValueError(
            f'max_extra_params must be >= 0, got {max_extra_params}')
    if coarsest is None:
        coarsest = [[tasks]] * num_stages
    floor = [_canonical(groups, tasks) for groups in coarsest]
    for s, partition in enumerate(floor):
        for g in partition:
            try:
                group_score(g, affinities[s])
            except KeyError as e:
                raise ValueError(
                    f'no affinity measured from {e.args[0][0]!r} to '
                    f'{e.args[0][1]!r} at stage {s}, which the measured '
                    f'run shares ({list(g)})') from None
    min_cost = extra_params(floor, stage_params)
    min_branches = len(floor[-1])
    if max_extra_params is not None and max_extra_params < min_cost or \
            max_branches is not None and max_branches < min_branches:
        raise ValueError(
            'no tree meets the budget (max_extra_params='
            f'{max_extra_params}, max_branches={max_branches}): the '
            f'coarsest tree the measurements allow, {_as_tree(floor)}, '
            f'already has {min_cost} extra parameters and {min_branches} '
            'branch(es)')
    if len(tasks) > MAX_EXHAUSTIVE:
        chain = _greedy(tasks, affinities, stage_params, max_extra_params,
                        max_branches, floor)
    else:
        chain = _exhaustive(tasks, affinities, stage_params, max_extra_params,
                            max_branches, floor)
    return dict(
        stage_groups=_as_tree(chain),
        score=tree_score(chain, affinities),
        extra_params=extra_params(chain, stage_params),
        branches=len(chain[-1]),
        search='exhaustive' if len(tasks) <= MAX_EXHAUSTIVE else 'greedy')


def _exhaustive(tasks, affinities, stage_params, max_extra, max_branches,
                floor):
    num_stages = len(affinities)
    budget = math.inf if max_extra is None else max_extra

    def score(s, partition):
        return sum(group_score(g, affinities[s]) for g in partition)

    @lru_cache(maxsize=None)
    def frontier(s, parent):
        """Pareto set of (cost, -score, chain) of stages s.. under
        ``parent`` (the partition of stage s - 1)."""
        results = []
        for partition in refinements(parent, tasks):
            if not _refines(partition, floor[s]):
                continue
            if s == num_stages - 1 and max_branches is not None and \
                    len(partition) > max_branches:
                continue
            cost = (len(partition) - 1) * stage_params[s]
            if cost > budget:
                continue
            own = score(s, partition)
            tails = [(0, 0., ())] if s == num_stages - 1 else \
                frontier(s + 1, partition)
            for tail_cost, tail_neg, tail in tails:
                if cost + tail_cost <= budget:
                    results.append((cost + tail_cost, -own + tail_neg,
                                    (partition, ) + tail))
        return _pareto(results)

    options = frontier(0, (tuple(tasks), ))
    if not options:
        raise ValueError('no tree meets the budget')
    best = min(options, key=lambda o: (round(o[1], 12), o[0]))
    return list(best[2])


def _refines(partition, coarser) -> bool:
    """Whether every group of ``partition`` lies in one of ``coarser``."""
    return all(any(set(g) <= set(c) for c in coarser) for g in partition)


def _pareto(options):
    """Keep the options that no other beats on cost and score."""
    options = sorted(options, key=lambda o: (o[0], o[1]))
    kept, best = [], math.inf
    for option in options:
        if option[1] < best - 1e-12:
            kept.append(option)
            best = option[1]
    return kept


def _greedy(tasks, affinities, stage_params, max_extra, max_branches, floor):
    budget = math.inf if max_extra is None else max_extra
    branches = math.inf if max_branches is None else max_branches
    chain, parent, spent = [], (tuple(tasks), ), 0
    for s, a in enumerate(affinities):
        groups = list(parent)
        # the splits of this stage's groups, the most rewarding first
        splits = []
        for group in parent:
            parts = [
                part for sub in floor[s] if set(sub) & set(group)
                for part in _agglomerate([t for t in group if t in sub], a)
            ]
            gain = sum(group_score(g, a) for g in parts) - \
                group_score(group, a) if len(parts) > 1 else 0.
            forced = len([sub for sub in floor[s]
                          if set(sub) & set(group)]) > 1
            if len(parts) > 1:
                subs = [
                    tuple(t for t in group if t in sub) for sub in floor[s]
                    if set(sub) & set(group)
                ]
                splits.append((not forced, -gain, group, parts, subs))
        for _, _, group, parts, subs in sorted(splits, key=lambda x: x[:2]):
            # the measured run's own split is always possible
            for option in (parts, subs) if len(subs) > 1 else (parts, ):
                trial = [g for g in groups if g != group] + list(option)
                # later stages have at least as many copies as this one
                later = sum((len(trial) - 1) * p for p in stage_params[s:])
                if spent + later <= budget and len(trial) <= branches:
                    groups = trial
                    break
        parent = _canonical(groups, tasks)
        spent += (len(parent) - 1) * stage_params[s]
        chain.append(parent)
    if not all(_refines(p, f) for p, f in zip(chain, floor)):
        raise ValueError('no tree meets the budget')
    return chain


def _agglomerate(group: List[str], affinity) -> List[Tuple[str, ...]]:
    """Average-linkage merging of ``group``'s tasks while the symmetric
    affinity between the merged clusters is not negative."""
    clusters = [(t, ) for t in group]
    while len(clusters) > 1:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            pairs = [(i, j) for i in clusters[a] for j in clusters[b]]
            link = sum(affinity[i][j] + affinity[j][i]
                       for i, j in pairs) / len(pairs)
            if best is None or link > best[0]:
                best = (link, a, b)
        if best[0] < 0:
            break
        _, a, b = best
        clusters = [c for k, c in enumerate(clusters) if k not in (a, b)
                    ] + [clusters[a] + clusters[b]]
    return clusters


def format_tree(tree: Sequence[Sequence[Sequence[str]]]) -> str:
    """One line per stage: ``stage 2: [cls] [det seg]``."""
    return '\n'.join(f'stage {s}: ' + ' '.join(f"[{' '.join(g)}]"
                                               for g in groups)
                     for s, groups in enumerate(tree))


def parse_count(text) -> float:
    """``'1.5M'``, ``'200k'``, ``'3e6'`` or ``150000`` -> a number."""
    if isinstance(text, (int, float)):
        return float(text)
    units = {'k': 1e3, 'm': 1e6, 'g': 1e9}
    body = str(text).strip()
    scale = units.get(body[-1:].lower())
    try:
        return float(body[:-1] if scale else body) * (scale or 1.)
    except ValueError:
        raise ValueError(f'not a parameter count: {text!r} (e.g. 1.5M, '
                         '200k, 150000)') from None


def config_delta(tree: Sequence[Sequence[Sequence[str]]], base: str, out: str,
                 header: str) -> str:
    """The text of a config that is ``base`` with the backbone ``tree``.

    Args:
        tree: The ``stage_groups``.
        base (str): The config it derives from.
        out (str): Where the config will be written (``_base_`` is
            relative to it when both are on one drive).
        header (str): Comment lines on where the tree comes from.
    """
    import os.path as osp
    try:
        path = osp.relpath(osp.abspath(base), osp.dirname(osp.abspath(out)))
    except ValueError:  # another drive
        path = osp.abspath(base)
    groups = ',\n'.join(f'            {[list(g) for g in stage]!r}'
                        for stage in tree)
    comments = ''.join(f'# {line}\n' for line in header.splitlines())
    return (f"{comments}_base_ = [{path!r}]\n\n"
            "model = dict(\n"
            "    backbone=dict(\n"
            "        share_stages=None,\n"
            "        stage_groups=[\n"
            f"{groups}\n"
            "        ]))\n")
