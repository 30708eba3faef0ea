"""The run recipe in checkpoints and what a resume would change of it."""
from types import SimpleNamespace

import torch
from mmengine.dataset import DefaultSampler
from torch.utils.data import DataLoader

from mtl_pvt.engine.run_recipe import WORLD_SIZE, recipe_changes, run_recipe


def test_changes_are_listed_by_key_per_task_and_side():
    saved = {
        'model.tasks': ['cls', 'det'],
        'train_dataloader.batch_sampler.batch_sizes': dict(cls=6, det=2),
        WORLD_SIZE: 1,
        'randomness.seed': 0
    }
    assert recipe_changes(saved, saved) == []
    assert recipe_changes(None, saved) == []  # an older checkpoint
    current = dict(
        saved, **{
            'train_dataloader.batch_sampler.batch_sizes': dict(cls=3, det=2),
            WORLD_SIZE: 2,
            'train_dataloader.batch_sampler.mode': 'joint'
        })
    del current['randomness.seed']
    assert recipe_changes(saved, current) == [
        'train_dataloader.batch_sampler.batch_sizes.cls: 6 -> 3',
        'world size (processes): 1 -> 2',
        "train_dataloader.batch_sampler.mode: (none) -> 'joint'",
        'randomness.seed: 0 -> (none)',
    ]


def test_recipe_of_a_single_task_run_and_a_sharing_tree():
    dataset = list(range(10))
    loader = DataLoader(
        dataset, batch_size=4, sampler=DefaultSampler(dataset, seed=5))
    tree = [[['a', 'b']], [['a'], ['b']]]
    model = torch.nn.Module()
    model.task_names = ('a', 'b')
    model.backbone = SimpleNamespace(sharing_tree=lambda: tree)
    runner = SimpleNamespace(
        model=model,
        train_loop=SimpleNamespace(dataloader=loader),
        world_size=2,
        seed=7)
    assert run_recipe(runner) == {
        'model.tasks': ['a', 'b'],
        'model.backbone (sharing tree)': tree,
        'train_dataloader.batch_size': 4,
        'train_dataloader.sampler.seed': 5,
        WORLD_SIZE: 2,
        'randomness.seed': 7
    }
