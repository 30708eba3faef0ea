"""Task kinds: the registered kinds and their facts, the kind of a config's
or a model's tasks under free task names, and a new kind as one class."""
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmdet.models.detectors import BaseDetector
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.structures import DataSample
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample

from mtl_pvt.analysis import complexity_report
from mtl_pvt.registry import TASK_KINDS
from mtl_pvt.tasks import (Classification, Detection, Segmentation, TaskKind,
                           all_kinds, config_task_kinds, get_kind, kind_fits,
                           kind_of_class, kind_of_config, kind_of_model,
                           libraries, model_task_kinds, resolve_task_kinds)
from mtl_pvt.testing import make_mtl_model, task_batch
from mtl_pvt.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MTL = 'configs/mtl/pvtv2_b2_full_share.py'
FREE_NAMES = ('configs/demo/mtl/'
              'pvtv2_b0_partial_share_s2_free_names_demo.py')
STL = dict(
    cls='configs/stl/pvtv2_b2_cls_in1k.py',
    det='configs/stl/pvtv2_b2_retinanet_coco.py',
    seg='configs/stl/pvtv2_b2_semfpn_ade20k.py')
FACTS = dict(
    cls=dict(
        library='mmpretrain',
        model_base='mmpretrain.models.classifiers.BaseClassifier',
        sample_type='mmpretrain.structures.DataSample',
        pred_field='pred_score',
        main_metric='accuracy/top1',
        higher_is_better=True,
        input_shape=(224, 224),
        visualizer=dict(type='mmpretrain.UniversalVisualizer'),
        draw_order=2,
        test_visualization_hook=dict(type='VisualizationHook', enable=False)),
    det=dict(
        library='mmdet',
        model_base='mmdet.models.detectors.BaseDetector',
        sample_type='mmdet.structures.DetDataSample',
        pred_field='pred_instances',
        main_metric='coco/bbox_mAP',
        higher_is_better=True,
        input_shape=(800, 1280),
        visualizer=dict(type='mmdet.DetLocalVisualizer'),
        draw_order=1,
        test_visualization_hook=dict(type='DetVisualizationHook')),
    seg=dict(
        library='mmseg',
        model_base='mmseg.models.segmentors.BaseSegmentor',
        sample_type='mmseg.structures.SegDataSample',
        pred_field='pred_sem_seg',
        main_metric='mIoU',
        higher_is_better=True,
        input_shape=(512, 512),
        visualizer=dict(type='mmseg.SegLocalVisualizer', alpha=0.5),
        draw_order=0,
        test_visualization_hook=dict(type='SegVisualizationHook')))
CLASSES = dict(
    cls=(Classification, BaseClassifier, DataSample),
    det=(Detection, BaseDetector, DetDataSample),
    seg=(Segmentation, BaseSegmentor, SegDataSample))
UNKNOWN_KIND = ("unknown task kind 'depth'; the registered kinds are "
                "['cls', 'det', 'seg']")


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules(init_default_scope=False)


def load(rel_path):
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    return cfg.model, cfg.get('default_scope')


def names(kinds):
    return {task: None if k is None else k.name for task, k in kinds.items()}


def test_the_three_kinds_and_their_facts():
    kinds = all_kinds()
    assert list(kinds) == ['cls', 'det', 'seg']
    assert libraries() == ['mmpretrain', 'mmdet', 'mmseg']
    for name, facts in FACTS.items():
        kind = kinds[name]
        kind_cls, model_base, sample_type = CLASSES[name]
        assert type(kind) is kind_cls and TASK_KINDS.get(name) is kind_cls
        assert get_kind(name) is kind and get_kind(kind) is kind
        assert kind.name == name
        assert {key: getattr(kind, key) for key in facts} == facts
        assert kind.model_class() is model_base
        assert kind.sample_class() is sample_type
        assert kind_of_class(model_base) is kind
    assert kind_of_class(nn.Linear) is None and kind_of_class(None) is None


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(KeyError, match=re.escape(UNKNOWN_KIND)):
        get_kind('depth')


def test_flops_samples():
    """Only detectors read image metas in tensor mode."""
    assert get_kind('cls').flops_samples((64, 96)) is None
    assert get_kind('seg').flops_samples((64, 96)) is None
    samples = get_kind('det').flops_samples([64, 96])
    assert len(samples) == 1 and type(samples[0]) is DetDataSample
    assert samples[0].metainfo == dict(
        img_shape=(64, 96),
        ori_shape=(64, 96),
        pad_shape=(64, 96),
        batch_input_shape=(64, 96),
        scale_factor=(1., 1.))


def test_kinds_of_the_real_configs():
    model_cfg, scope = load(MTL)
    assert names(config_task_kinds(model_cfg, scope)) == dict(
        cls='cls', det='det', seg='seg')
    assert kind_of_config(model_cfg, scope) is None  # a MultiTaskModel
    for name, path in STL.items():
        model_cfg, scope = load(path)
        assert kind_of_config(model_cfg, scope) is get_kind(name)
        assert names(config_task_kinds(model_cfg, scope)) == {name: name}
        assert kind_of_config(model_cfg.backbone, scope) is None
    assert config_task_kinds(dict(type='mtl_pvt.SharedPVTv2')) == {}
    assert kind_of_config(dict(depth=1)) is None


def test_free_task_names():
    model_cfg, scope = load(FREE_NAMES)
    assert names(config_task_kinds(model_cfg, scope)) == dict(
        imnet='cls', places='cls', coco='det')
    # stated kinds agree with the classes'
    model_cfg.task_kinds = dict(places='cls', coco='det')
    assert names(config_task_kinds(model_cfg, scope)) == dict(
        imnet='cls', places='cls', coco='det')
    # a task model of no known kind gets the kind stated for it
    model_cfg.tasks.depth = dict(type='mtl_pvt.SharedPVTv2')
    model_cfg.task_kinds = dict()
    assert config_task_kinds(model_cfg, scope)['depth'] is None
    model_cfg.task_kinds = dict(depth='seg')
    assert names(config_task_kinds(model_cfg, scope)) == dict(
        imnet='cls', places='cls', coco='det', depth='seg')


@pytest.mark.parametrize('task_kinds,error,message', [
    (dict(places='det'), ValueError,
     "task 'places': task_kinds names it 'det' but its task model is a "
     "'cls' model (a BaseClassifier, not a BaseDetector)"),
    (dict(coco='depth'), KeyError, UNKNOWN_KIND),
    (dict(imnet='cls', coco2='det'), ValueError,
     "task_kinds names ['coco2'], which are not tasks of the model "
     "['imnet', 'places', 'coco']"),
])
def test_task_kinds_that_do_not_fit(task_kinds, error, message):
    model_cfg, scope = load(FREE_NAMES)
    model_cfg.task_kinds = task_kinds
    with pytest.raises(error, match=re.escape(message)):
        config_task_kinds(model_cfg, scope)


def test_kinds_of_built_task_models():
    tasks = dict(a=nn.Linear(2, 2), b=nn.Identity())
    assert resolve_task_kinds(tasks) == dict(a=None, b=None)
    assert resolve_task_kinds(tasks, dict(b='det')) == dict(a=None, b='det')
    with pytest.raises(KeyError, match=re.escape(UNKNOWN_KIND)):
        resolve_task_kinds(tasks, dict(a='depth'))
    assert kind_of_model(nn.Linear(2, 2)) is None
    assert model_task_kinds(nn.Linear(2, 2)) == {}


def test_multi_task_model_with_free_names():
    model = make_mtl_model()
    assert model.task_kinds == {'a': 'cls', 'b': 'cls', 'seg': 'seg'}
    assert model_task_kinds(model) == dict(
        a=get_kind('cls'), b=get_kind('cls'), seg=get_kind('seg'))
    with pytest.raises(
            ValueError,
            match=re.escape(
                "task 'b': task_kinds names it 'seg' but its task model is a "
                "'cls' model (a BaseClassifier, not a BaseSegmentor)")):
        resolve_task_kinds(model.tasks, dict(b='seg'))
    report = complexity_report(model, with_flops=False)
    assert {
        task: (path['kind'], path['input_shape'])
        for task, path in report['tasks'].items()
    } == dict(
        a=('cls', [224, 224]), b=('cls', [224, 224]), seg=('seg', [512, 512]))
    # a kind's shape applies to all its tasks, a task's wins
    report = complexity_report(
        model, {
            'cls': (32, 32),
            'b': (64, 64)
        }, with_flops=False)
    assert {
        task: path['input_shape']
        for task, path in report['tasks'].items()
    } == dict(
        a=[32, 32], b=[64, 64], seg=[512, 512])


def test_task_batch_with_free_names():
    """Each task's sample is its kind's, drawn as for the kind's name."""
    named = task_batch(['seg', 'imnet', 'coco', 'places'],
                       seed=3,
                       kinds=dict(imnet='cls', places='cls', coco='det'))
    plain = task_batch(['seg', 'cls', 'det', 'cls'], seed=3)
    for got, expected in zip(named['inputs'], plain['inputs']):
        assert got.dtype == torch.uint8 and torch.equal(got, expected)
    assert [type(s) for s in named['data_samples']] == \
        [SegDataSample, DataSample, DetDataSample, DataSample]
    assert [s.task for s in named['data_samples']] == \
        ['seg', 'imnet', 'coco', 'places']
    assert [tuple(s.img_shape) for s in named['data_samples']] == \
        [(128, 128), (64, 64), (128, 128), (64, 64)]
    assert torch.equal(named['data_samples'][2].gt_instances.bboxes,
                       plain['data_samples'][2].gt_instances.bboxes)
    assert int(named['data_samples'][3].gt_label) == \
        int(plain['data_samples'][3].gt_label)
    with pytest.raises(KeyError, match=re.escape(UNKNOWN_KIND)):
        task_batch(['depth'])


class Depth(TaskKind):
    """A throwaway kind: plain ``nn.Identity`` task models."""
    name = 'test_depth'
    library = 'test_depth_library'
    model_base = 'torch.nn.Identity'
    input_shape = (48, 64)


def test_a_new_kind_is_one_registered_class():
    TASK_KINDS.register_module(name=Depth.name, module=Depth)
    try:
        assert list(all_kinds()) == ['cls', 'det', 'seg', 'test_depth']
        assert type(get_kind('test_depth')) is Depth
        assert libraries() == [
            'mmpretrain', 'mmdet', 'mmseg', 'test_depth_library'
        ]
        tasks = dict(a=nn.Identity(), b=nn.Linear(2, 2))
        assert resolve_task_kinds(tasks) == dict(a='test_depth', b=None)
        assert kind_of_model(nn.Identity()) is get_kind('test_depth')
    finally:
        TASK_KINDS._module_dict.pop(Depth.name)
    assert list(all_kinds()) == ['cls', 'det', 'seg']
    assert libraries() == ['mmpretrain', 'mmdet', 'mmseg']


class DepthEstimation(TaskKind):
    """A throwaway kind whose base derives from the segmentation kind's."""
    name = 'test_mmseg_depth'
    library = 'mmseg'
    model_base = 'mmseg.models.segmentors.DepthEstimator'


def test_the_most_specific_kind_wins():
    """mmseg's DepthEstimator is an EncoderDecoder (a BaseSegmentor): a
    kind of its own is chosen over segmentation, which still fits it."""
    from mmseg.models.segmentors import DepthEstimator, EncoderDecoder
    TASK_KINDS.register_module(
        name=DepthEstimation.name, module=DepthEstimation)
    try:
        depth = get_kind('test_mmseg_depth')
        assert kind_of_class(DepthEstimator) is depth
        assert kind_of_class(EncoderDecoder) is get_kind('seg')
        assert kind_fits('seg', DepthEstimator)
        assert not kind_fits('test_mmseg_depth', EncoderDecoder)
        assert not kind_fits('cls', DepthEstimator)
        # a class of no known kind may be given any kind
        assert kind_fits('cls', nn.Linear)
    finally:
        TASK_KINDS._module_dict.pop(DepthEstimation.name)
