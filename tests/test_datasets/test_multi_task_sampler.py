"""MultiTaskSampler and MultiTaskBatchSampler: exact, seeded, sharded."""
import itertools

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from torch.utils.data import DataLoader, Dataset

from mtl_pvt.datasets import (MultiTaskBatchSampler, MultiTaskDataset,
                              MultiTaskSampler)
from mtl_pvt.datasets.samplers import multi_task_sampler

# sizes that batch sizes do not divide, so micro-batches span task-epochs
SIZES = dict(cls=60, det=25, seg=7)
BATCH_SIZES = dict(cls=4, det=3, seg=2)
RANDOM_POLICIES = [
    dict(policy='proportional'),
    dict(policy='temperature', temperature=2.0),
    dict(policy='weights', weights=dict(cls=1, det=0, seg=3)),
]
ALL_POLICIES = [dict(policy='round_robin')] + RANDOM_POLICIES
ALTERNATING = dict(mode='alternating')
TEMPERATURE = dict(ALTERNATING, policy='temperature')
WEIGHTS = dict(ALTERNATING, policy='weights')


class FakeDataset(Dataset):
    """``size`` packed items whose data sample records its local index;
    ``calls`` (a list) collects every index read."""

    def __init__(self, size, calls=None):
        self.size = size
        self.calls = calls

    def __len__(self):
        return self.size

    def __getitem__(self, idx):
        if self.calls is not None:
            self.calls.append(idx)
        return dict(
            inputs=torch.tensor(idx),
            data_samples=BaseDataElement(metainfo=dict(local=idx)))


def make_dataset(sizes=SIZES, calls=None):
    return MultiTaskDataset({
        task: FakeDataset(n, calls)
        for task, n in sizes.items()
    })


def make_batch_sampler(sizes=SIZES, seed=0, rank=0, world_size=1, **kwargs):
    sampler = MultiTaskSampler(
        make_dataset(sizes), seed=seed, rank=rank, world_size=world_size)
    kwargs.setdefault('batch_sizes', BATCH_SIZES)
    return MultiTaskBatchSampler(sampler, batch_size=16, **kwargs)


def take(batch_sampler, num, start=None):
    """``num`` batches, from ``start`` when given."""
    if start is not None:
        batch_sampler.set_position(start)
    return list(itertools.islice(iter(batch_sampler), num))


def batch_tasks(dataset, batch):
    return [dataset.task_index(idx)[0] for idx in batch]


def task_streams(dataset, batches):
    """Task -> the local indices that ``batches`` drew, in order."""
    streams = {task: [] for task in dataset.task_names}
    for batch in batches:
        for idx in batch:
            task, local = dataset.task_index(idx)
            streams[task].append(local)
    return streams


def assert_epochs_are_permutations(stream, size):
    """Every complete task-epoch of ``stream`` visits each index once."""
    whole = len(stream) // size * size
    assert whole >= 2 * size
    for start in range(0, whole, size):
        assert sorted(stream[start:start + size]) == list(range(size))


def test_joint_counts_per_step():
    batch_sampler = make_batch_sampler(mode='joint')
    dataset = batch_sampler.sampler.dataset
    expected = ['cls'] * 4 + ['det'] * 3 + ['seg'] * 2
    for step, batch in enumerate(take(batch_sampler, 50)):
        assert batch_tasks(dataset, batch) == expected
        assert batch_sampler.step_tasks(step) == ['cls', 'det', 'seg']
    assert batch_sampler.task_counts(50) == dict(cls=50, det=50, seg=50)


def test_batch_size_for_every_task():
    batch_sampler = make_batch_sampler(batch_sizes=None)
    dataset = batch_sampler.sampler.dataset
    batch = take(batch_sampler, 1)[0]
    assert batch_tasks(dataset, batch) == ['cls'] * 16 + ['det'] * 16 + \
        ['seg'] * 16


@pytest.mark.parametrize('mode', ['joint', 'alternating'])
@pytest.mark.parametrize('shuffle', [True, False])
def test_every_index_once_per_task_epoch(mode, shuffle):
    dataset = make_dataset()
    sampler = MultiTaskSampler(dataset, shuffle=shuffle, seed=3)
    batch_sampler = MultiTaskBatchSampler(
        sampler, mode=mode, batch_sizes=BATCH_SIZES)
    streams = task_streams(dataset, take(batch_sampler, 120))
    for task, size in SIZES.items():
        assert_epochs_are_permutations(streams[task], size)
        if not shuffle:
            assert streams[task][:size] == list(range(size))
    if shuffle:
        # a fresh permutation every task-epoch
        assert streams['seg'][:7] != streams['seg'][7:14]


def test_alternating_round_robin_cycle():
    batch_sampler = make_batch_sampler(mode='alternating')
    dataset = batch_sampler.sampler.dataset
    for step, batch in enumerate(take(batch_sampler, 30)):
        task = ['cls', 'det', 'seg'][step % 3]
        assert batch_tasks(dataset, batch) == [task] * BATCH_SIZES[task]
    assert batch_sampler.task_counts(31) == dict(cls=11, det=10, seg=10)


def frequencies(batch_sampler, steps):
    counts = batch_sampler.task_counts(steps)
    return {task: count / steps for task, count in counts.items()}


def test_alternating_proportional_frequencies():
    batch_sampler = make_batch_sampler(
        mode='alternating', policy='proportional')
    total = sum(SIZES.values())
    for task, freq in frequencies(batch_sampler, 50_000).items():
        assert freq == pytest.approx(SIZES[task] / total, abs=0.01)


def test_temperature_one_equals_proportional():
    proportional = make_batch_sampler(
        mode='alternating', policy='proportional', seed=5)
    temperature = make_batch_sampler(
        mode='alternating', policy='temperature', temperature=1.0, seed=5)
    assert take(proportional, 3000) == take(temperature, 3000)


def test_large_temperature_is_uniform():
    batch_sampler = make_batch_sampler(
        mode='alternating', policy='temperature', temperature=1e6)
    for freq in frequencies(batch_sampler, 50_000).values():
        assert freq == pytest.approx(1 / 3, abs=0.01)


def test_temperature_two_frequencies():
    batch_sampler = make_batch_sampler(
        mode='alternating', policy='temperature', temperature=2.0)
    roots = {task: n**0.5 for task, n in SIZES.items()}
    for task, freq in frequencies(batch_sampler, 50_000).items():
        assert freq == pytest.approx(
            roots[task] / sum(roots.values()), abs=0.01)


def test_weights_frequencies():
    batch_sampler = make_batch_sampler(
        mode='alternating',
        policy='weights',
        weights=dict(cls=1, det=0, seg=3))
    freqs = frequencies(batch_sampler, 50_000)
    assert freqs['det'] == 0
    assert freqs['cls'] == pytest.approx(0.25, abs=0.01)
    assert freqs['seg'] == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize('policy', RANDOM_POLICIES)
def test_task_counts_match_the_batches(policy):
    batch_sampler = make_batch_sampler(mode='alternating', **policy)
    dataset = batch_sampler.sampler.dataset
    steps = 2 * multi_task_sampler.CHUNK_STEPS + 100
    counts = dict.fromkeys(SIZES, 0)
    for step, batch in enumerate(take(batch_sampler, steps)):
        task = batch_tasks(dataset, batch)[0]
        assert batch_sampler.step_tasks(step) == [task]
        counts[task] += 1
    assert batch_sampler.task_counts(steps) == counts


@pytest.mark.parametrize('policy', ALL_POLICIES)
def test_seeded(policy):
    runs = [
        take(make_batch_sampler(mode='alternating', seed=seed, **policy), 50)
        for seed in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_sampler_alone_yields_tasks_in_turn():
    sampler = MultiTaskSampler(make_dataset(), seed=0)
    indices = list(itertools.islice(iter(sampler), 3 * 100))
    dataset = sampler.dataset
    assert batch_tasks(dataset, indices) == ['cls', 'det', 'seg'] * 100
    streams = task_streams(dataset, [indices])
    assert_epochs_are_permutations(streams['seg'], SIZES['seg'])


@pytest.mark.parametrize('mode,policy', [('joint', {}),
                                         ('alternating', RANDOM_POLICIES[1])])
def test_ranks_are_disjoint_and_agree_on_tasks(mode, policy):
    ranks = [
        make_batch_sampler(
            mode=mode, rank=rank, world_size=2, seed=11, **policy)
        for rank in (0, 1)
    ]
    dataset = ranks[0].sampler.dataset
    batches = [take(batch_sampler, 300) for batch_sampler in ranks]
    for batch0, batch1 in zip(*batches):
        assert sorted(set(batch_tasks(dataset, batch0))) == \
            sorted(set(batch_tasks(dataset, batch1)))
    streams = [task_streams(dataset, b) for b in batches]
    for task, size in SIZES.items():
        first, second = streams[0][task], streams[1][task]
        # the union over ranks, in the order of the global stream
        merged = [i for pair in zip(first, second) for i in pair]
        assert_epochs_are_permutations(merged, size)
        if size % 2 == 0:
            assert not set(first[:size // 2]) & set(second[:size // 2])


def test_rank_from_dist_info(monkeypatch):
    monkeypatch.setattr(multi_task_sampler, 'get_dist_info', lambda: (1, 2))
    by_dist = make_batch_sampler(rank=None, world_size=None)
    assert (by_dist.sampler.rank, by_dist.sampler.world_size) == (1, 2)
    explicit = make_batch_sampler(rank=1, world_size=2)
    assert take(by_dist, 20) == take(explicit, 20)


def make_loader(batch_sampler, num_workers, **kwargs):
    return DataLoader(
        batch_sampler.sampler.dataset,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=lambda samples: samples,
        **kwargs)


def global_indices(dataset, batches):
    """The global index of every sample of ``batches``, from its task and
    local index."""
    metainfos = [[s['data_samples'].metainfo for s in b] for b in batches]
    return [[dataset.global_index(m['task'], m['local']) for m in batch]
            for batch in metainfos]


def loader_batches(batch_sampler, num_workers, num):
    loader = make_loader(batch_sampler, num_workers)
    return global_indices(batch_sampler.sampler.dataset,
                          itertools.islice(loader, num))


@pytest.mark.parametrize('kwargs', [dict(mode='joint'), TEMPERATURE])
def test_same_indices_with_and_without_workers(kwargs):
    batch_sampler = make_batch_sampler(seed=2, **kwargs)
    expected = take(batch_sampler, 40)
    assert loader_batches(batch_sampler, 0, 40) == expected
    assert loader_batches(batch_sampler, 2, 40) == expected


@pytest.mark.parametrize('policy', ALL_POLICIES)
@pytest.mark.parametrize('mode', ['joint', 'alternating'])
def test_set_position_continues_the_run(mode, policy):
    batch_sampler = make_batch_sampler(mode=mode, seed=4, **policy)
    chunk = multi_task_sampler.CHUNK_STEPS
    uninterrupted = take(batch_sampler, 2 * chunk + 20)
    for start in (0, 1, 17, chunk - 1, chunk, 2 * chunk + 5):
        assert take(batch_sampler, 10, start) == \
            uninterrupted[start:start + 10]
    # a resumed run's own sampler, built afresh
    resumed = make_batch_sampler(mode=mode, seed=4, **policy)
    assert take(resumed, 5, 100) == uninterrupted[100:105]


def test_set_position_does_not_read_skipped_samples():
    calls = []
    sampler = MultiTaskSampler(make_dataset(calls=calls), seed=0)
    batch_sampler = MultiTaskBatchSampler(
        sampler,
        mode='alternating',
        batch_sizes=BATCH_SIZES,
        policy='proportional')
    expected = take(batch_sampler, 3, 100_000)
    batch_sampler.set_position(100_000)
    assert loader_batches(batch_sampler, 0, 3) == expected
    assert len(calls) == sum(len(batch) for batch in expected)


def test_len_and_set_epoch():
    joint = make_batch_sampler(mode='joint')
    alternating = make_batch_sampler(mode='alternating')
    assert len(joint.sampler) == 92
    assert len(joint) == 92 // 9 + 1  # 9 samples a step
    assert len(alternating) == 31  # ceil(92 / 3): 3 samples a step
    before = take(joint, 5)
    joint.set_epoch(3)
    joint.sampler.set_epoch(3)
    assert take(joint, 5) == before


def test_built_by_the_runner():
    cfg = dict(
        batch_size=16,
        num_workers=0,
        sampler=dict(type='MultiTaskSampler', shuffle=True),
        batch_sampler=dict(
            type='MultiTaskBatchSampler',
            mode='joint',
            batch_sizes=dict(cls=4, det=3, seg=2),
            policy='round_robin',
            temperature=2.0,
            weights=None),
        dataset=dict(
            type='MultiTaskDataset',
            datasets={
                t: FakeDataset(n)
                for t, n in SIZES.items()
            }))
    with DefaultScope.overwrite_default_scope('mtl_pvt'):
        loader = Runner.build_dataloader(cfg, seed=9)
    assert isinstance(loader.batch_sampler, MultiTaskBatchSampler)
    assert loader.batch_sampler.sampler.seed == 9
    batch = next(iter(loader))
    tasks = [s.task for s in batch['data_samples']]
    assert tasks == ['cls'] * 4 + ['det'] * 3 + ['seg'] * 2


# yapf: disable
ARGUMENT_ERRORS = [
    # (arguments, error, words of the message)
    (dict(mode='mixed'), ValueError, ["'mixed'", 'joint', 'alternating']),
    (dict(ALTERNATING, policy='random'), ValueError,
     ["'random'", 'round_robin', 'temperature']),
    (dict(batch_sizes=dict(cls=4, det=3)), KeyError, ["'seg'"]),
    (dict(batch_sizes=dict(BATCH_SIZES, depth=1)), KeyError, ["'depth'"]),
    (dict(batch_sizes=dict(BATCH_SIZES, det=0)), ValueError,
     ["'det'", 'got 0']),
    (dict(batch_sizes=dict(BATCH_SIZES, det=-1)), ValueError,
     ["'det'", 'got -1']),
    (dict(batch_sizes=None, batch_size=None), ValueError, ['got None']),
    (dict(TEMPERATURE, temperature=0), ValueError, ['temperature', 'got 0']),
    (dict(TEMPERATURE, temperature=-2.0), ValueError, ['got -2.0']),
    (WEIGHTS, ValueError, ['weights', 'None']),
    (dict(WEIGHTS, weights=dict(SIZES, det=-0.5)), ValueError,
     ["'det'", 'got -0.5']),
    (dict(WEIGHTS, weights=dict.fromkeys(SIZES, 0)), ValueError,
     ['all zero']),
    (dict(WEIGHTS, weights=dict(cls=1, det=1)), KeyError, ["'seg'"]),
]
# yapf: enable


@pytest.mark.parametrize('kwargs,error,words', ARGUMENT_ERRORS)
def test_argument_errors(kwargs, error, words):
    sampler = MultiTaskSampler(make_dataset(), seed=0)
    kwargs = dict(dict(batch_size=16, batch_sizes=BATCH_SIZES), **kwargs)
    with pytest.raises(error) as info:
        MultiTaskBatchSampler(sampler, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_other_errors():
    with pytest.raises(TypeError, match='needs a MultiTaskDataset'):
        MultiTaskSampler(FakeDataset(3), seed=0)
    with pytest.raises(TypeError, match='needs a MultiTaskSampler'):
        MultiTaskBatchSampler(range(3), batch_size=2)
    # the dataset refuses an empty task before the sampler sees it
    with pytest.raises(
            ValueError, match=r"task\(s\) \['det'\] has no samples"):
        MultiTaskSampler(make_dataset(dict(cls=3, det=0)), seed=0)
    with pytest.raises(ValueError, match='rank=2, world_size=2'):
        MultiTaskSampler(make_dataset(), seed=0, rank=2, world_size=2)
    with pytest.raises(ValueError, match='got -1'):
        make_batch_sampler().set_position(-1)


def test_permutations_seeded_by_seed_task_and_epoch():
    batch_sampler = make_batch_sampler(
        dict(a=5, b=3), seed=0, batch_sizes=dict(a=2, b=1))
    batches = take(batch_sampler, 6)

    def permutation(task, epoch, size):
        key = [
            0, multi_task_sampler._PERMUTATION,
            multi_task_sampler._task_key(task), epoch
        ]
        return np.random.default_rng(key).permutation(size).tolist()

    first_a = permutation('a', 0, 5)
    assert [b[:2] for b in batches[:2]] == [first_a[:2], first_a[2:4]]
    # task b's global indices start at 5
    assert [b[2] - 5 for b in batches] == \
        permutation('b', 0, 3) + permutation('b', 1, 3)


def test_resume_a_persistent_loader():
    """How a loop resumes: set_position, then a new iterator of the loader
    (its workers kept) continues the uninterrupted run."""
    batch_sampler = make_batch_sampler(seed=1, **TEMPERATURE)
    expected = take(batch_sampler, 5, 500)
    batch_sampler.set_position(0)
    loader = make_loader(batch_sampler, 2, persistent_workers=True)
    next(iter(loader))
    batch_sampler.set_position(500)
    batches = itertools.islice(loader, 5)
    dataset = batch_sampler.sampler.dataset
    assert global_indices(dataset, batches) == expected
