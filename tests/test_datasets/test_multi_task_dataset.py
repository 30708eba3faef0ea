"""MultiTaskDataset over the demo ImageNet, COCO and ADE20K datasets."""
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

from mtl_pvt.datasets import MultiTaskDataset
from mtl_pvt.demo import make_demo_data

SIZES = dict(cls=8, det=3, seg=4)  # 2 images x 4 classes, 3, 4
PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None))


@pytest.fixture(scope='module')
def dataset_cfgs(tmp_path_factory, repo_root):
    """Task -> the demo configs' train dataset, on tiny demo data."""
    demo = make_demo_data(
        str(tmp_path_factory.mktemp('demo')),
        cls_train_per_class=2,
        cls_val_per_class=1,
        det_train=SIZES['det'],
        det_val=1,
        seg_train=SIZES['seg'],
        seg_val=1)
    cfgs = {}
    for task, name, root in [('cls', 'imagenet', demo['imagenet_root']),
                             ('det', 'coco', demo['coco_root'] + '/'),
                             ('seg', 'ade20k', demo['ade_root'])]:
        path = repo_root / 'configs/_base_/datasets' / f'demo_{name}.py'
        cfg = Config.fromfile(str(path))[f'{task}_train_dataloader'].dataset
        cfgs[task] = dict(cfg.to_dict(), data_root=root)
    return cfgs


@pytest.fixture(scope='module')
def dataset(dataset_cfgs):
    return MultiTaskDataset(dataset_cfgs)


def seeded_item(dataset, idx, seed):
    """``dataset[idx]`` with the random transforms (flips) seeded."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return dataset[idx]


def assert_same(actual, expected):
    """Equal packed data; the ``task`` metainfo key of ``actual`` aside."""
    assert type(actual) is type(expected)
    if isinstance(actual, BaseDataElement):
        meta = {k: v for k, v in actual.metainfo.items() if k != 'task'}
        assert_same(meta, expected.metainfo)
        assert_same(dict(actual.items()), dict(expected.items()))
    elif isinstance(actual, dict):
        assert actual.keys() == expected.keys()
        for key in actual:
            assert_same(actual[key], expected[key])
    elif isinstance(actual, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e)
    elif isinstance(actual, torch.Tensor):
        assert torch.equal(actual, expected)
    elif isinstance(actual, np.ndarray):
        np.testing.assert_array_equal(actual, expected)
    elif hasattr(actual, 'tensor'):  # mmdet's boxes
        assert torch.equal(actual.tensor, expected.tensor)
    else:
        assert actual == expected


def assert_plain(obj):
    assert isinstance(obj, PLAIN_TYPES), type(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert_plain(key)
            assert_plain(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            assert_plain(value)


def test_index_space(dataset):
    assert dataset.task_names == ['cls', 'det', 'seg']
    assert dataset.task_sizes == SIZES
    assert {t: len(d) for t, d in dataset.datasets.items()} == SIZES
    assert dataset.task_offsets == dict(cls=0, det=8, seg=11)
    assert len(dataset) == 15
    expected = [('cls', i) for i in range(8)] + \
        [('det', i) for i in range(3)] + [('seg', i) for i in range(4)]
    assert [dataset.task_index(i) for i in range(15)] == expected
    assert [dataset.global_index(*pair) for pair in expected] == \
        list(range(15))
    assert dataset.task_index(-1) == ('seg', 3)
    assert dataset.get_data_info(9)['task'] == 'det'


def test_index_errors(dataset):
    with pytest.raises(IndexError, match='index 15 is out of range'):
        dataset.task_index(15)
    with pytest.raises(IndexError, match="3 is out of range for task 'det'"):
        dataset.global_index('det', 3)
    with pytest.raises(KeyError, match="unknown task 'depth'"):
        dataset.global_index('depth', 0)


def test_items_equal_the_sub_datasets_items(dataset):
    types = dict(cls='DataSample', det='DetDataSample', seg='SegDataSample')
    for idx in range(len(dataset)):
        task, local = dataset.task_index(idx)
        item = seeded_item(dataset, idx, seed=idx)
        assert item['data_samples'].metainfo['task'] == task
        assert type(item['data_samples']).__name__ == types[task]
        assert_same(item, seeded_item(dataset.datasets[task], local, idx))


def test_sub_datasets_keep_their_types_and_pipelines(dataset, dataset_cfgs):
    names = {t: type(d).__name__ for t, d in dataset.datasets.items()}
    assert names == dict(
        cls='ImageNet', det='CocoDataset', seg='ADE20KDataset')
    for task, sub in dataset.datasets.items():
        packer = type(sub.pipeline.transforms[-1]).__name__
        assert packer == dataset_cfgs[task]['pipeline'][-1]['type'].split(
            '.')[-1]


def test_metainfo_is_plain_and_per_task(dataset, tmp_path):
    metainfo = dataset.metainfo
    assert list(metainfo) == ['cls', 'det', 'seg']
    for task, sub in dataset.datasets.items():
        assert metainfo[task]['classes'] == sub.metainfo['classes']
    assert metainfo['seg']['classes'][0] == 'wall'
    assert_plain(metainfo)
    torch.save(dict(meta=dict(dataset_meta=metainfo)), tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)
    assert loaded['meta']['dataset_meta'] == metainfo


def test_lazy_init(dataset_cfgs):
    lazy = MultiTaskDataset(dataset_cfgs, lazy_init=True)
    assert not any(d._fully_initialized for d in lazy.datasets.values())
    assert lazy.metainfo['det']['classes'] == ('car', 'bus', 'clock', 'bottle')
    lazy.full_init()
    assert all(d._fully_initialized for d in lazy.datasets.values())
    assert lazy.task_sizes == SIZES
    # sizes force the initialisation, as mmengine's datasets do
    assert len(MultiTaskDataset(dataset_cfgs, lazy_init=True)) == 15


def test_built_from_config(dataset_cfgs):
    with DefaultScope.overwrite_default_scope('mtl_pvt'):
        built = DATASETS.build(
            dict(type='MultiTaskDataset', datasets=dataset_cfgs))
    assert isinstance(built, MultiTaskDataset)
    assert built.task_sizes == SIZES


def test_joint_batch_through_the_runner(dataset_cfgs):
    cfg = dict(
        batch_size=16,
        num_workers=0,
        sampler=dict(type='MultiTaskSampler', shuffle=True),
        batch_sampler=dict(
            type='MultiTaskBatchSampler',
            mode='joint',
            batch_sizes=dict(cls=2, det=1, seg=1)),
        dataset=dict(type='MultiTaskDataset', datasets=dataset_cfgs))
    with DefaultScope.overwrite_default_scope('mtl_pvt'):
        loader = Runner.build_dataloader(cfg, seed=0)
    batch = next(iter(loader))
    tasks = [s.metainfo['task'] for s in batch['data_samples']]
    assert tasks == ['cls', 'cls', 'det', 'seg']
    shapes = [tuple(x.shape) for x in batch['inputs']]
    assert shapes == [(3, 64, 64)] * 2 + [(3, 128, 128)] * 2


def test_errors(dataset_cfgs):
    with pytest.raises(ValueError, match='non-empty dict'):
        MultiTaskDataset({})
    bad = dict(dataset_cfgs, det=dict(dataset_cfgs['det'], ann_file='x.json'))
    with pytest.raises(FileNotFoundError, match="task 'det'"):
        MultiTaskDataset(bad)
    unknown = dict(dataset_cfgs, seg=dict(type='mmseg.NoSuchDataset'))
    with pytest.raises(KeyError, match="task 'seg'"):
        MultiTaskDataset(unknown)
