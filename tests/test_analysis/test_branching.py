"""The search of a stage_groups tree from per-stage affinities."""
import itertools
import random

import pytest

from mtl_pvt.analysis.branching import (_canonical, _refines, config_delta,
                                        extra_params, format_tree, parse_count,
                                        set_partitions, suggest_tree,
                                        tree_score)
from mtl_pvt.models.backbones.shared_backbone import check_stage_groups

SIZES = [10, 20, 40, 80]


def random_affinities(tasks, seed):
    rng = random.Random(seed)
    return [{
        i: {
            j: rng.uniform(-1, 1)
            for j in tasks
        }
        for i in tasks
    } for _ in SIZES]


def brute_force(tasks, affinities, max_extra, max_branches):
    """Every chain of partitions that only split: the best score, then
    the fewest extra parameters."""
    partitions = [_canonical(p, tasks) for p in set_partitions(tasks)]
    best = None
    for chain in itertools.product(partitions, repeat=len(SIZES)):
        if not all(_refines(chain[k + 1], chain[k]) for k in range(3)):
            continue
        cost = extra_params(chain, SIZES)
        if max_extra is not None and cost > max_extra or \
                max_branches is not None and len(chain[-1]) > max_branches:
            continue
        key = (-round(tree_score(chain, affinities), 12), cost)
        best = key if best is None or key < best else best
    return best


def test_set_partitions_are_the_bell_numbers():
    assert [len(list(set_partitions('abcdefg'[:n]))) for n in range(1, 7)] \
        == [1, 2, 5, 15, 52, 203]


@pytest.mark.parametrize('seed', range(3))
def test_exhaustive_search_is_the_best_tree(seed):
    tasks = ['a', 'b', 'c', 'd']
    affinities = random_affinities(tasks, seed)
    for max_extra, max_branches in [(None, None), (60, None), (None, 2),
                                    (100, 3), (0, None)]:
        result = suggest_tree(tasks, affinities, SIZES, max_extra,
                              max_branches)
        score, cost = brute_force(tasks, affinities, max_extra, max_branches)
        assert result['score'] == pytest.approx(-score, abs=1e-9)
        assert result['extra_params'] == cost
        check_stage_groups(tasks, result["stage_groups"], 4)
        assert result['search'] == 'exhaustive'


def test_negative_pairs_split_positive_ones_share():
    tasks = ['cls', 'det', 'seg']
    # det and seg help each other everywhere; cls hurts both from stage 2
    affinities = []
    for stage in range(4):
        sign = -1. if stage >= 2 else 1.
        affinities.append({
            'cls': dict(cls=1., det=sign * .1, seg=sign * .2),
            'det': dict(cls=sign * .1, det=1., seg=.3),
            'seg': dict(cls=sign * .3, det=.2, seg=1.)
        })
    result = suggest_tree(tasks, affinities, SIZES)
    assert result['stage_groups'] == [[['cls', 'det', 'seg']]] * 2 + \
        [[['cls'], ['det', 'seg']]] * 2
    assert result['extra_params'] == 40 + 80
    assert result['branches'] == 2
    assert format_tree(result['stage_groups']).splitlines()[2] == \
        'stage 2: [cls] [det seg]'
    # a budget of one extra stage-3 copy: only the last stage splits
    result = suggest_tree(tasks, affinities, SIZES, max_extra_params=80)
    assert result['stage_groups'][2] == [['cls', 'det', 'seg']]
    assert result['stage_groups'][3] == [['cls'], ['det', 'seg']]


def test_zero_affinity_prefers_sharing():
    tasks = ['a', 'b', 'c']
    zeros = [{i: {j: 0. for j in tasks} for i in tasks} for _ in SIZES]
    result = suggest_tree(tasks, zeros, SIZES)
    assert result['stage_groups'] == [[tasks]] * 4
    assert result['extra_params'] == 0


def test_measured_tree_bounds_the_search():
    """Pairs the measured run did not share have no affinity: the tree
    can only split its groups further."""
    tasks = ['a', 'b', 'c']
    measured = [[tasks], [tasks], [['a', 'b'], ['c']], [['a'], ['b'], ['c']]]
    affinities = [{
        i: {
            j: 1.
            for j in tasks
        }
        for i in tasks
    }, {
        i: {
            j: 1.
            for j in tasks
        }
        for i in tasks
    },
                  dict(a=dict(a=1., b=1.), b=dict(a=1., b=1.), c=dict(c=1.)),
                  dict(a=dict(a=1.), b=dict(b=1.), c=dict(c=1.))]
    result = suggest_tree(tasks, affinities, SIZES, coarsest=measured)
    assert result['stage_groups'] == measured
    with pytest.raises(ValueError, match='no affinity measured from'):
        suggest_tree(tasks, affinities, SIZES)  # full sharing not measured


def test_a_budget_no_tree_meets():
    tasks = ['a', 'b', 'c']
    affinities = random_affinities(tasks, 0)
    measured = [[tasks], [tasks], [['a', 'b'], ['c']], [['a', 'b'], ['c']]]
    with pytest.raises(ValueError, match='no tree meets the budget'):
        suggest_tree(
            tasks, affinities, SIZES, max_branches=1, coarsest=measured)
    with pytest.raises(ValueError, match='no tree meets the budget'):
        suggest_tree(
            tasks, affinities, SIZES, max_extra_params=100, coarsest=measured)
    with pytest.raises(ValueError, match='max_branches must be >= 1'):
        suggest_tree(tasks, affinities, SIZES, max_branches=0)


def test_greedy_beyond_eight_tasks_finds_blocks():
    tasks = [f't{k}' for k in range(9)]
    blocks = [tasks[:3], tasks[3:6], tasks[6:]]

    def same_block(i, j):
        return any(i in b and j in b for b in blocks)

    affinities = [{
        i: {
            j: 1. if same_block(i, j) else -1.
            for j in tasks
        }
        for i in tasks
    } for _ in SIZES]
    result = suggest_tree(tasks, affinities, SIZES)
    assert result['search'] == 'greedy'
    assert result['stage_groups'] == [blocks] * 4
    # within budget: the split moves to the last stage
    result = suggest_tree(tasks, affinities, SIZES, max_extra_params=160)
    assert result['stage_groups'] == [[tasks]] * 3 + [blocks]
    assert result['extra_params'] <= 160


def test_config_delta_and_counts(tmp_path):
    text = config_delta(
        [[['a', 'b']], [['a', 'b']], [['a'], ['b']], [['a'], ['b']]],
        str(tmp_path / 'configs/x.py'), str(tmp_path / 'out/y.py'),
        'from a test')
    assert text.startswith('# from a test\n')
    assert "_base_ = ['../configs/x.py']" in text
    assert "share_stages=None" in text
    assert parse_count('1.5M') == 1.5e6 and parse_count('200k') == 2e5
    assert parse_count(150000) == 150000.
    with pytest.raises(ValueError, match='not a parameter count'):
        parse_count('lots')
