"""Every config builds, and the STL baselines equal the OpenMMLab models."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import MODELS

from mtl_pvt import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p and 'configs/studies/' not in p)


def load_config(rel_path):
    """Load a config with every backbone checkpoint switched off."""
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    cfg.model.backbone.init_cfg = None
    return cfg


def build_model(cfg):
    register_all_modules()
    return MODELS.build(cfg.model)


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_config_list_is_complete():
    names = {osp.basename(p) for p in CONFIGS}
    for b in range(6):
        for task in ('cls_in1k', 'retinanet_coco', 'semfpn_ade20k'):
            assert f'pvtv2_b{b}_{task}.py' in names
    for task in ('cls', 'retinanet', 'semfpn'):
        assert f'pvtv2_b0_{task}_demo.py' in names
    for b in (0, 2):
        for sharing in ('full_share', 'partial_share_s1', 'partial_share_s2',
                        'partial_share_s3', 'no_share'):
            assert f'pvtv2_b{b}_{sharing}.py' in names
    for backbone in ('resnet50', 'swin_t'):
        for sharing in ('full_share', 'partial_share_s2', 'no_share'):
            assert f'{backbone}_{sharing}.py' in names
    for demo in ('resnet18_w16', 'swin_w32'):
        assert f'{demo}_partial_share_s2_demo.py' in names


def _balancing_base(path):
    """``..._full_share_uw.py`` -> ``..._full_share.py`` (demo alike)."""
    head, name = osp.split(path)
    stem, demo = name[:-len('.py')], ''
    if stem.endswith('_demo'):
        stem, demo = stem[:-len('_demo')], '_demo'
    return osp.join(head, stem.rsplit('_', 1)[0] + demo + '.py')


# Task-balancing variants: the model of the config they are a delta on,
# another optim_wrapper (checked by test_balancing_config_builds).
BALANCING = {
    p: _balancing_base(p)
    for p in CONFIGS if re.search(r'\b(weighting|aggregator)=dict',
                                  open(osp.join(REPO, p)).read())
}


@pytest.mark.parametrize('path', [p for p in CONFIGS if p not in BALANCING])
def test_config_builds(path):
    cfg = load_config(path)
    assert cfg.default_scope == 'mtl_pvt'
    model = build_model(cfg)
    assert num_params(model) > 0
    if '/mtl/' in path:
        assert type(model).__name__ == 'MultiTaskModel'
        # tasks named by their kinds, or free names whose kinds the task
        # models' types give (the free-names demo)
        kinds = ({
            'cls': 'cls',
            'det': 'det',
            'seg': 'seg'
        } if 'free_names' not in path else {
            'imnet': 'cls',
            'places': 'cls',
            'coco': 'det'
        })
        assert model.task_kinds == kinds
        for task in model.tasks.values():
            assert type(task.backbone).__name__ == 'TaskBackboneView'
            assert not list(task.backbone.parameters())
        return
    backbone = model.backbone
    assert type(backbone).__name__ == 'PyramidVisionTransformerV2'
    assert type(backbone).__module__ == 'mmdet.models.backbones.pvt'


@pytest.mark.parametrize('path', sorted(BALANCING))
def test_balancing_config_builds(path):
    """The model is the base config's; the optimiser wrapper builds and
    binds to a multi-task model, with its weighting or aggregator."""
    from mmengine.optim import build_optim_wrapper

    from mtl_pvt.testing import make_mtl_model
    cfg = load_config(path)
    base = load_config(BALANCING[path])
    assert cfg.model == base.model
    assert cfg.optim_wrapper.optimizer == base.optim_wrapper.optimizer
    model = make_mtl_model()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    wrapper.bind(model)
    assert type(wrapper).__name__ == 'MultiTaskOptimWrapper'
    assert (wrapper.weighting is not None) + (wrapper.aggregator is not None)


@pytest.mark.parametrize('name,expected', [
    ('pvtv2_b2_cls_in1k', 25_362_856),
    ('pvtv2_b2_retinanet_coco', 35_099_828),
    ('pvtv2_b2_semfpn_ade20k', 29_116_502),
])
def test_b2_reference_parameter_counts(name, expected):
    model = build_model(load_config(f'configs/stl/{name}.py'))
    assert num_params(model) == expected
    assert num_params(model.backbone) == 24_849_856


def _plain(cfg, scope):
    """``cfg`` without ``_scope_`` keys and without ``scope.`` prefixes."""
    if isinstance(cfg, dict):
        return {k: _plain(v, scope) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_plain(v, scope) for v in cfg)
    if isinstance(cfg, str) and cfg.startswith(scope + '.'):
        return cfg[len(scope) + 1:]
    return cfg


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize('b', range(6))
def test_retinanet_equals_mmdet_config(b):
    ours = load_config(f'configs/stl/pvtv2_b{b}_retinanet_coco.py')
    theirs = get_config(f'mmdet::pvt/retinanet_pvtv2-b{b}_fpn_1x_coco.py')
    theirs.model.backbone.init_cfg = None
    theirs.model._scope_ = theirs.default_scope
    assert _shapes(build_model(ours)) == _shapes(build_model(theirs))
    # Same recipe: data, optimizer, schedule, the model's other settings.
    ours, theirs = _plain(ours.to_dict(), 'mmdet'), theirs.to_dict()
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator',
                'optim_wrapper', 'param_scheduler', 'train_cfg',
                'auto_scale_lr'):
        assert ours[key] == theirs[key], key
    theirs['model'].pop('_scope_')
    ours['model']['backbone'].pop('init_cfg')
    theirs['model']['backbone'].pop('init_cfg')
    assert ours['model'] == theirs['model']


def test_semfpn_equals_mmseg_model_but_backbone():
    ours = _plain(
        load_config('configs/stl/pvtv2_b2_semfpn_ade20k.py').to_dict(),
        'mmseg')['model']
    theirs = get_config(
        'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py').to_dict()
    theirs = theirs['model']
    for key in ('backbone', 'pretrained', '_scope_'):
        ours.pop(key, None), theirs.pop(key, None)
    ours['neck'].pop('in_channels'), theirs['neck'].pop('in_channels')
    assert ours == theirs


@pytest.mark.parametrize('ours,theirs', [
    ('pvtv2_b2_mask_rcnn', 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'),
    ('pvtv2_b2_upernet', 'mmseg::_base_/models/upernet_r50.py'),
])
def test_swapped_decoders_equal_library_bases(ours, theirs):
    """The written-out Mask R-CNN and UPerNet are the libraries' models."""
    task = 'det' if 'rcnn' in ours else 'seg'
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models', ours + '.py'))
    ours = _plain(cfg[f'{task}_model'].to_dict(), 'mmdet')
    theirs = get_config(theirs).model.to_dict()
    for key in ('backbone', 'pretrained', '_scope_'):
        ours.pop(key, None), theirs.pop(key, None)
    if task == 'det':
        ours['neck'].pop('in_channels'), theirs['neck'].pop('in_channels')
        assert ours == theirs
    else:
        for head in ('decode_head', 'auxiliary_head'):
            for key in ('in_channels', 'num_classes'):
                ours[head].pop(key), theirs[head].pop(key)
        ours['data_preprocessor'].pop('size')
        assert ours == theirs


@pytest.mark.parametrize('name,scope,theirs', [
    ('pvtv2_b2_cls_in1k', 'mmpretrain',
     'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py'),
    ('pvtv2_b2_semfpn_ade20k', 'mmseg', 'mmseg::_base_/datasets/ade20k.py'),
])
def test_datasets_equal_library_bases(name, scope, theirs):
    """The task-named dataset bases are the libraries' dataset bases."""
    ours = _plain(load_config(f'configs/stl/{name}.py').to_dict(), scope)
    theirs = _plain(get_config(theirs).to_dict(), scope)
    if scope == 'mmpretrain':  # the PVT v2 recipe: 8 GPUs x 128 images
        assert ours['train_dataloader'].pop('batch_size') == 128
        theirs['train_dataloader'].pop('batch_size')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        assert ours[key] == theirs[key], key


def test_coco_instance_equals_mmdet_base():
    """The det task of the instance combination is mmdet's coco_instance,
    in the task-named variables and in the multi-task loaders."""
    ours = Config.fromfile(
        osp.join(REPO,
                 'configs/_base_/datasets/mtl_in1k_coco_instance_ade20k.py'))
    ours = _plain(ours.to_dict(), 'mmdet')
    theirs = get_config('mmdet::_base_/datasets/coco_instance.py').to_dict()
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        assert ours[f'det_{key}'] == theirs[key], key
    assert ours['train_dataloader']['dataset']['datasets']['det'] == \
        theirs['train_dataloader']['dataset']
    for key in ('val_dataloader', 'test_dataloader', 'val_evaluator',
                'test_evaluator'):
        assert ours[key]['det'] == theirs[key], key


@pytest.mark.parametrize('path',
                         [p for p in CONFIGS if p.startswith('configs/mtl/')])
def test_real_scale_mtl_configs_pass_the_preflight_check(path):
    """Types and task names check out; only the datasets are missing."""
    from mtl_pvt.utils import check_config
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(REPO, path))
    assert cfg.train_cfg.type == 'MultiTaskIterBasedTrainLoop'
    assert set(cfg.val_evaluator) == set(cfg.model.tasks)
    with pytest.raises(
            FileNotFoundError,
            match='train_dataloader.dataset.datasets.cls.'
            'data_root: data/imagenet does not exist'):
        check_config(cfg)


def test_semfpn_recipe():
    cfg = load_config('configs/stl/pvtv2_b2_semfpn_ade20k.py')
    assert cfg.model.neck.out_channels == 256
    assert cfg.model.decode_head.type == 'FPNHead'
    assert cfg.model.decode_head.channels == 128
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=1e-4, weight_decay=1e-4)
    poly, = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.end) == \
        ('PolyLR', 0.9, 0., 40000)
    assert cfg.train_cfg.max_iters == 40000
    crop = [t for t in cfg.seg_train_pipeline if t.type == 'RandomCrop'][0]
    assert tuple(crop.crop_size) == (512, 512)
    assert cfg.model.data_preprocessor.size == (512, 512)
    # 4 GPUs x 4 images = 16 images per iteration
    assert cfg.train_dataloader.batch_size == 4


def test_cls_recipe():
    cfg = load_config('configs/stl/pvtv2_b2_cls_in1k.py')
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 1e-3, 0.05)
    assert cfg.train_dataloader.batch_size * 8 == 1024
    assert cfg.auto_scale_lr.base_batch_size == 1024
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 5)
    assert (cosine.type, cosine.begin) == ('CosineAnnealingLR', 5)
    assert cfg.train_cfg.max_epochs == 300
    train_types = [t.type for t in cfg.cls_train_pipeline]
    assert train_types == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment',
        'RandomErasing', 'PackInputs'
    ]
    assert cfg.cls_train_pipeline[1].interpolation == 'bicubic'
    test_types = [t.type for t in cfg.cls_test_pipeline]
    assert test_types == [
        'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs'
    ]
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert [a.type for a in cfg.model.train_cfg.augments] == \
        ['Mixup', 'CutMix']


@pytest.mark.parametrize('name',
                         ['pvtv2_b2_retinanet_coco', 'pvtv2_b2_semfpn_ade20k'])
def test_dense_baselines_start_from_imagenet_weights(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'stl', f'{name}.py'))
    assert cfg.model.backbone.init_cfg.checkpoint.endswith('pvt_v2_b2.pth')


def test_b2_multi_task_models_run():
    """The real-scale MTL models take a mixed batch: loss and predict."""
    from mtl_pvt.testing import task_batch
    batch = task_batch(['cls', 'det', 'seg'])
    model = build_model(load_config('configs/mtl/pvtv2_b2_full_share.py'))
    model.train()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    swap = build_model(
        load_config('configs/mtl/pvtv2_b2_maskrcnn_upernet_partial_share_s3'
                    '.py')).eval()
    with torch.no_grad():
        results = swap.test_step(batch)
    assert 'masks' in results[1].pred_instances
    assert results[2].pred_sem_seg.data.shape == (1, 128, 128)


@torch.no_grad()
def test_b2_models_forward():
    """The real-scale b2 baselines run a forward pass on small inputs."""
    cls = build_model(load_config('configs/stl/pvtv2_b2_cls_in1k.py')).eval()
    assert cls(torch.rand(2, 3, 224, 224)).shape == (2, 1000)
    det = build_model(
        load_config('configs/stl/pvtv2_b2_retinanet_coco.py')).eval()
    cls_scores, _ = det(torch.rand(1, 3, 128, 128))
    assert len(cls_scores) == 5 and cls_scores[0].shape[1] == 9 * 80
    seg = build_model(
        load_config('configs/stl/pvtv2_b2_semfpn_ade20k.py')).eval()
    assert seg(torch.rand(1, 3, 128, 128)).shape == (1, 150, 32, 32)


# The study on other backbones: each task model of the ResNet-50 and Swin-T
# configs is the library's reference model (the seg model of ResNet-50 on
# torchvision's stem, not mmseg's ResNetV1c deep stem).
OTHER_BACKBONES = {
    'resnet50':
    dict(
        cls='mmpretrain::resnet/resnet50_8xb32_in1k.py',
        det='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
        seg='mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'),
    'swin_t':
    dict(
        cls='mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
        det='mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py',
        seg='mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_'
        '8xb2-160k_ade20k-512x512.py'),
}


@pytest.mark.parametrize('backbone', sorted(OTHER_BACKBONES))
def test_other_backbones_task_paths_are_the_reference_models(backbone):
    """Without sharing, each task's path (its stage copies and task model)
    has the parameters of the library's reference model; its task model
    is that model's config but for the backbone."""
    from mtl_pvt.analysis.complexity import path_params
    mtl = build_model(load_config(f'configs/mtl/{backbone}_no_share.py'))
    cfg = load_config(f'configs/mtl/{backbone}_full_share.py')
    for task, reference in OTHER_BACKBONES[backbone].items():
        theirs = get_config(reference)
        ours = _plain(cfg.model.tasks[task].to_dict(), theirs.default_scope)
        model = theirs.model.to_dict()
        for key in ('backbone', 'pretrained', '_scope_'):
            ours.pop(key, None), model.pop(key, None)
        if task == 'cls' and backbone == 'swin_t':
            # mmdet's Swin returns a list: the list-taking pooling
            assert ours.pop('neck') == dict(
                type='mtl_pvt.ListGlobalAveragePooling')
            model.pop('neck')
        assert ours == model, task

        theirs.model.backbone.init_cfg = None
        theirs.model._scope_ = theirs.default_scope
        library = build_model(theirs)
        expected = num_params(library)
        if getattr(library.backbone, 'deep_stem', False):
            # mmseg's ResNetV1c: three 3x3 convolutions in the stem
            # against torchvision's 7x7 convolution and its BN
            stem = num_params(
                library.backbone.stem) - (7 * 7 * 3 * 64 + 2 * 64)
            assert stem == 19_232
            expected -= stem
        assert path_params(mtl, task) == expected, task
