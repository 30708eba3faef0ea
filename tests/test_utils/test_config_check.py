"""Pre-flight config checks: missing data paths, unregistered types and
task names that differ between the parts of a multi-task config."""
import copy
import re

import pytest
from mmengine.config import Config

from mtl_pvt.utils import (UnregisteredTypeError, check_config,
                           register_all_modules)
from mtl_pvt.utils.config_check import check_task_names, task_names

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


@pytest.mark.parametrize(
    'tool,args,message',
    [
        ('train.py', ['--cfg-options', TYPO], TYPO_MESSAGE),
        ('train.py', ['--cfg-options', NO_ANN_FILE], NO_ANN_FILE_MESSAGE),
        # the argument check names it before the config check would
        ('test.py', ['missing.pth'
                     ], "argument checkpoint: no such file: 'missing.pth'"),
    ])
def test_tools_fail_before_work_dir(run_tool, tiny_cls_config, tiny_imagenet,
                                    tmp_path, tool, args, message):
    work_dir = tmp_path / 'work_dir'
    result = run_tool(tool, tiny_cls_config, *args, '--work-dir', work_dir)
    assert result.returncode != 0
    assert message.format(data=tiny_imagenet) in result.stderr
    assert not work_dir.exists()


@pytest.fixture
def mtl_cfg(cfg):
    """The tiny config as a multi-task one: tasks 'a' and 'b' of the same
    classifier, each with its own val/test dataloader and evaluator."""
    cfg.model = dict(
        type='MultiTaskModel',
        backbone=dict(type='SharedPVTv2', share_stages=4),
        tasks=dict(a=cfg.model, b=cfg.model))
    loader, metric = cfg.test_dataloader, cfg.test_evaluator
    copy_ = copy.deepcopy
    for stage in ('val', 'test'):
        cfg[f'{stage}_dataloader'] = dict(a=copy_(loader), b=copy_(loader))
        cfg[f'{stage}_evaluator'] = dict(
            a=copy_(metric), b=dict(metrics=[copy_(metric)]))
        cfg[f'{stage}_cfg'] = dict(
            type='MultiTaskValLoop',
            delta_m=dict(
                a=dict(metric='accuracy/top1', stl=80.),
                b=dict(metric='accuracy/top1', stl=70.)))
    return cfg


def test_multi_task_config_passes(mtl_cfg):
    check_config(mtl_cfg)


@pytest.mark.parametrize('key,value,error,message', [
    ('val_dataloader.b.dataset.ann_file', 'meta/x.txt', FileNotFoundError,
     'val_dataloader.b.dataset.ann_file: {data}/meta/x.txt does not exist'),
    ('test_dataloader.a.dataset.type', 'mmpretrain.CustomDatasett',
     UnregisteredTypeError,
     "test_dataloader.a.dataset.type: 'CustomDatasett' is not registered in "
     "scope 'mmpretrain' (registry 'dataset')"),
    ('test_evaluator.a.type', 'mmpretrain.Accuracyy', UnregisteredTypeError,
     "test_evaluator.a.type: 'Accuracyy' is not registered in scope "
     "'mmpretrain' (registry 'metric')"),
    ('val_evaluator.a', dict(type='mmdet.CocoMetric', ann_file='gt.json'),
     FileNotFoundError, 'val_evaluator.a.ann_file: gt.json does not exist'),
])
def test_task_dataloaders_and_evaluators(mtl_cfg, tiny_imagenet, key, value,
                                         error, message):
    mtl_cfg.merge_from_dict({key: value})
    check_raises(mtl_cfg, error, message.format(data=tiny_imagenet))


def test_evaluator_metrics_of_a_task(mtl_cfg):
    mtl_cfg.test_evaluator.b.metrics[0].type = 'mmpretrain.Accuracyy'
    check_raises(
        mtl_cfg, UnregisteredTypeError,
        "test_evaluator.b.metrics[0].type: 'Accuracyy' is not registered in "
        "scope 'mmpretrain' (registry 'metric')")


@pytest.mark.parametrize('change,place,names', [
    (lambda cfg: cfg.val_evaluator.pop('b'), 'val_evaluator', ['a']),
    (lambda cfg: cfg.test_dataloader.update(c=cfg.test_dataloader.a),
     'test_dataloader', ['a', 'b', 'c']),
    (lambda cfg: cfg.val_cfg.delta_m.update(c=cfg.val_cfg.delta_m.pop('a')),
     'val_cfg.delta_m', ['b', 'c']),
])
def test_task_names_must_agree(mtl_cfg, change, place, names):
    change(mtl_cfg)
    check_raises(
        mtl_cfg, ValueError,
        f"task names differ: model.tasks has ['a', 'b'] but {place} has "
        f'{names}')
    # Only the stages asked for are compared.
    check_config(mtl_cfg, stages=('train', ))


def test_task_kinds_that_fit_pass(mtl_cfg):
    mtl_cfg.model.task_kinds = dict(b='cls')
    check_config(mtl_cfg)


@pytest.mark.parametrize('task_kinds,message', [
    (dict(a='cls', c='cls'),
     "model.task_kinds.c: 'c' is not a task of model.tasks ['a', 'b']"),
    (dict(b='depth'), "model.task_kinds.b: 'depth' is not a registered task "
     "kind ['cls', 'det', 'seg']"),
    (dict(a='cls', b='det'),
     "model.task_kinds.b: 'det' contradicts the class of model.tasks.b "
     "(mmpretrain.ImageClassifier, a 'cls' task model)"),
    (['cls', 'cls'], 'model.task_kinds must be a dict of task name -> kind '
     "name, not ['cls', 'cls']"),
])
def test_task_kinds_are_checked(mtl_cfg, task_kinds, message):
    mtl_cfg.model.task_kinds = task_kinds
    check_raises(mtl_cfg, ValueError, message)


def test_task_dataloaders_need_a_loop_type(mtl_cfg):
    mtl_cfg.test_cfg = dict()
    check_raises(
        mtl_cfg, ValueError,
        "test_dataloader is a dict of tasks ['a', 'b']; it needs "
        "test_cfg=dict(type='MultiTaskTestLoop')")


def test_train_task_names(mtl_cfg):
    datasets = dict(a=mtl_cfg.train_dataloader.dataset)
    mtl_cfg.train_dataloader.dataset = dict(
        type='MultiTaskDataset', datasets=datasets)
    mtl_cfg.train_dataloader.batch_sampler = dict(
        type='MultiTaskBatchSampler', batch_sizes=dict(a=2, b=2))
    names = task_names(mtl_cfg)
    assert names['train_dataloader.dataset.datasets'] == ['a']
    assert names['train_dataloader.batch_sampler.batch_sizes'] == ['a', 'b']
    with pytest.raises(
            ValueError,
            match=re.escape("model.tasks has ['a', 'b'] but "
                            "train_dataloader.dataset.datasets has ['a']")):
        check_task_names(names)
    # Places that do not name tasks are not compared.
    check_task_names(dict(a=['x'], b=None, c=['x']))


@pytest.mark.parametrize(
    'key,value,message',
    [
        # deep inside the model: a loss, a norm layer, an init config
        ('model.head.loss.type', 'mmpretrain.CrossEntropyLosss',
         "model.head.loss.type: 'CrossEntropyLosss' is not registered in "
         "scope 'mmpretrain' (registry 'model')"),
        ('model.backbone.norm_cfg', dict(type='LNN'),
         "model.backbone.norm_cfg.type: 'LNN' is not registered in scope "
         "'mtl_pvt' (registry 'model')"),
        ('model.head.init_cfg', dict(type='Normall', layer='Linear'),
         "model.head.init_cfg.type: 'Normall' is not registered in scope "
         "'mtl_pvt' (registry 'weight initializer')"),
        # the runtime: optimizer, schedulers, hooks, samplers
        ('optim_wrapper.optimizer.type', 'SGDD',
         "optim_wrapper.optimizer.type: 'SGDD' is not registered in scope "
         "'mtl_pvt' (registry 'optimizer')"),
        ('param_scheduler', [dict(type='LinearLRR')],
         "param_scheduler[0].type: 'LinearLRR' is not registered in scope "
         "'mtl_pvt' (registry 'parameter scheduler')"),
        ('default_hooks.logger.type', 'LoggerHookk',
         "default_hooks.logger.type: 'LoggerHookk' is not registered in scope "
         "'mtl_pvt' (registry 'hook')"),
        ('train_dataloader.sampler.type', 'DefaultSamplerr',
         "train_dataloader.sampler.type: 'DefaultSamplerr' is not registered "
         "in scope 'mtl_pvt' (registry 'data sampler')"),
    ])
def test_unregistered_type_deep_in_the_config(cfg, key, value, message):
    cfg.merge_from_dict({key: value})
    check_raises(cfg, UnregisteredTypeError, message)


def test_deep_configs_of_other_registries_pass(cfg):
    # built from TASK_UTILS, or looked up by name in mmcv.ops
    cfg.model.head.update(
        _scope_='mmdet',
        coder=dict(type='DeltaXYWHBBoxCoder'),
        roi=dict(type='RoIAlign', output_size=7),
        nms=dict(type='nms', iou_threshold=0.5))
    check_config(cfg)
