"""Sharing trees: for each stage, the groups of tasks that share a copy."""
from typing import List, Sequence


def share_stages_groups(tasks: Sequence[str], share_stages: int,
                        num_stages: int) -> List[List[List[str]]]:
    """Task groups per stage for "the first ``share_stages`` are shared".

    Args:
        tasks (Sequence[str]): Task names.
        share_stages (int): Number of leading stages that all tasks share,
            0 (separate backbones) to ``num_stages`` (full sharing).
        num_stages (int): The backbone's number of stages.

    Returns:
        list[list[list[str]]]: For each stage, its groups of tasks.
    """
    if not isinstance(share_stages, int) or not \
            0 <= share_stages <= num_stages:
        raise ValueError('share_stages must be an int from 0 (separate '
                         f'backbones) to {num_stages} (full sharing), but '
                         f'got {share_stages!r}')
    return [[list(tasks)] if i < share_stages else [[t] for t in tasks]
            for i in range(num_stages)]


def group_key(group: Sequence[str]) -> str:
    """Name of a stage copy: its tasks joined by ``'_'``."""
    return '_'.join(group)


def check_stage_groups(tasks: Sequence[str],
                       stage_groups: Sequence[Sequence[Sequence[str]]],
                       num_stages: int) -> None:
    """Check that ``stage_groups`` is a tree over ``tasks``.

    Every stage must hold every task exactly once, and a group may only
    split, never merge, from one stage to the next (its input comes from one
    group of the stage before).

    Raises:
        ValueError: Naming the stage and the task or group at fault.
    """
    if len(stage_groups) != num_stages:
        raise ValueError(f'stage_groups needs one entry per stage '
                         f'({num_stages}), but got {len(stage_groups)}')
    parent_of = {}
    for i, groups in enumerate(stage_groups):
        seen = [t for group in groups for t in group]
        missing = [t for t in tasks if t not in seen]
        if missing:
            raise ValueError(f'stage_groups[{i}] leaves task(s) {missing} '
                             f'without stage {i}: {list(map(list, groups))}')
        extra = sorted(
            {t
             for t in seen if t not in tasks or seen.count(t) > 1})
        if extra:
            raise ValueError(f'stage_groups[{i}] names task(s) {extra} that '
                             f'are unknown or appear twice (tasks: '
                             f'{list(tasks)})')
        for group in groups:
            parents = {parent_of[t] for t in group} if i else {None}
            if len(parents) > 1:
                raise ValueError(
                    f'stage_groups[{i}] group {list(group)} merges tasks '
                    f'that run on different copies of stage {i - 1}')
        parent_of = {t: group_key(group) for group in groups for t in group}


def key_tasks(key: str, groups: Sequence[Sequence[str]]) -> List[str]:
    """The group of ``groups`` whose copy is named ``key``."""
    for group in groups:
        if group_key(group) == key:
            return list(group)
    raise KeyError(f'no group of {list(map(list, groups))} is named {key!r}')
