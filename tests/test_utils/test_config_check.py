"""Pre-flight config checks: missing data paths and unregistered types."""
import re

import pytest
from mmengine.config import Config

from mtl_pvt.utils import (UnregisteredTypeError, check_config,
                           register_all_modules)

TYPO = 'model.type=mmpretrain.ImageClassifierr'
TYPO_MESSAGE = ("model.type: 'ImageClassifierr' is not registered in scope "
                "'mmpretrain' (registry 'model')")
NO_ANN_FILE = 'train_dataloader.dataset.ann_file=meta/x.txt'
NO_ANN_FILE_MESSAGE = ('train_dataloader.dataset.ann_file: {data}/meta/x.txt '
                       'does not exist')


@pytest.fixture
def cfg(tiny_cls_config):
    register_all_modules(init_default_scope=False)
    return Config.fromfile(tiny_cls_config)


def check_raises(cfg, error, message, stages=('train', 'val', 'test')):
    with pytest.raises(error, match=f'^{re.escape(message)}$'):
        check_config(cfg, stages)


def test_valid_config_passes(cfg):
    check_config(cfg)


def test_missing_data_root(cfg, tmp_path):
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    check_raises(
        cfg, FileNotFoundError,
        f'train_dataloader.dataset.data_root: {tmp_path}/nowhere does not '
        'exist')


def test_missing_ann_file(cfg, tiny_imagenet):
    cfg.test_dataloader.dataset.ann_file = 'meta/missing.txt'
    check_raises(
        cfg, FileNotFoundError,
        f'test_dataloader.dataset.ann_file: {tiny_imagenet}/meta/missing.txt'
        ' does not exist')
    # Only the stages asked for are checked.
    check_config(cfg, stages=('train', ))


@pytest.mark.parametrize('prefix,key', [
    ('images', 'data_prefix'),
    (dict(img_path='train', seg_map_path='masks'), 'data_prefix.seg_map_path'),
])
def test_missing_prefix(cfg, tiny_imagenet, prefix, key):
    cfg.train_dataloader.dataset.data_prefix = prefix
    missing = prefix if isinstance(prefix, str) else prefix['seg_map_path']
    check_raises(
        cfg, FileNotFoundError,
        f'train_dataloader.dataset.{key}: {tiny_imagenet}/{missing} does not '
        'exist')


def test_wrapped_and_dict_datasets(cfg, tiny_imagenet):
    good = cfg.train_dataloader.dataset
    bad = dict(good, ann_file='meta/bad.txt')
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset',
        times=2,
        dataset=dict(type='ConcatDataset', datasets=[good, bad]))
    check_raises(
        cfg, FileNotFoundError,
        'train_dataloader.dataset.dataset.datasets[1].ann_file: '
        f'{tiny_imagenet}/meta/bad.txt does not exist')
    cfg.train_dataloader.dataset = dict(cls=good, det=bad)
    check_raises(
        cfg, FileNotFoundError, 'train_dataloader.dataset.det.ann_file: '
        f'{tiny_imagenet}/meta/bad.txt does not exist')


def test_remote_paths_are_not_checked(cfg):
    cfg.train_dataloader.dataset.data_root = 's3://bucket/imagenet'
    cfg.load_from = 'https://example.com/model.pth'
    check_config(cfg)


def test_missing_load_from(cfg, tmp_path):
    cfg.load_from = str(tmp_path / 'iter_9.pth')
    check_raises(cfg, FileNotFoundError,
                 f'load_from: {tmp_path}/iter_9.pth does not exist')


@pytest.mark.parametrize('key,value,message', [
    ('model.type', 'mmpretrain.ImageClassifierr',
     "model.type: 'ImageClassifierr' is not registered in scope "
     "'mmpretrain' (registry 'model')"),
    ('model.neck.type', 'ListGlobalAveragePoolingg',
     "model.neck.type: 'ListGlobalAveragePoolingg' is not registered in "
     "scope 'mtl_pvt' (registry 'model')"),
    ('model.backbone.type', 'mmdet.PyramidVisionTransformerV9',
     "model.backbone.type: 'PyramidVisionTransformerV9' is not registered "
     "in scope 'mmdet' (registry 'model')"),
    ('train_dataloader.dataset.type', 'mmpretrain.CustomDatasett',
     "train_dataloader.dataset.type: 'CustomDatasett' is not registered in "
     "scope 'mmpretrain' (registry 'dataset')"),
    ('test_evaluator.type', 'mmpretrain.Accuracyy',
     "test_evaluator.type: 'Accuracyy' is not registered in scope "
     "'mmpretrain' (registry 'metric')"),
])
def test_unregistered_type(cfg, key, value, message):
    cfg.merge_from_dict({key: value})
    check_raises(cfg, UnregisteredTypeError, message)


def test_unregistered_type_scope_and_pipeline(cfg):
    # Without a prefix, the nearest _scope_ decides, as when building.
    dataset = cfg.test_dataloader.dataset
    dataset.update(type='CustomDataset', _scope_='mmpretrain')
    dataset.pipeline = [dict(type='LoadImageFromFile'), dict(type='Packk')]
    check_raises(
        cfg, UnregisteredTypeError,
        "test_dataloader.dataset.pipeline[1].type: 'Packk' is not registered "
        "in scope 'mmpretrain' (registry 'transform')")
    # Nested transforms are checked in their parent's scope.
    dataset.pipeline[1] = dict(
        type='RandomChoice',
        _scope_='mmpretrain',
        transforms=[[dict(type='PackInputs')], [dict(type='Packk')]])
    check_raises(
        cfg, UnregisteredTypeError,
        "test_dataloader.dataset.pipeline[1].transforms[1][0].type: 'Packk' "
        "is not registered in scope 'mmpretrain' (registry 'transform')")
    # A KeyError like MMEngine's own, but it reads without quotes.
    assert issubclass(UnregisteredTypeError, KeyError)


@pytest.mark.parametrize('tool,args,message', [
    ('train.py', ['--cfg-options', TYPO], TYPO_MESSAGE),
    ('train.py', ['--cfg-options', NO_ANN_FILE], NO_ANN_FILE_MESSAGE),
    ('test.py', ['missing.pth'], 'load_from: missing.pth does not exist'),
])
def test_tools_fail_before_work_dir(run_tool, tiny_cls_config, tiny_imagenet,
                                    tmp_path, tool, args, message):
    work_dir = tmp_path / 'work_dir'
    result = run_tool(tool, tiny_cls_config, *args, '--work-dir', work_dir)
    assert result.returncode != 0
    assert message.format(data=tiny_imagenet) in result.stderr
    assert not work_dir.exists()
