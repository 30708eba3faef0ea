"""mtl2stl: task branches exported as native OpenMMLab models."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import MODELS, DefaultScope

from mtl_pvt import register_all_modules
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.converters import (export_config, mtl_to_stl, save_exports,
                                stl_to_mtl)
from mtl_pvt.testing import mtl_predict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MTL_DEMO = 'configs/demo/mtl/pvtv2_b0_{}_demo.py'
SHARINGS = ('full_share', 'partial_share_s2')
FREE_NAMES = 'configs/demo/mtl/pvtv2_b0_partial_share_s2_free_names_demo.py'
STL = dict(
    cls='configs/demo/stl/pvtv2_b0_cls_demo.py',
    det='configs/demo/stl/pvtv2_b0_retinanet_demo.py',
    seg='configs/demo/stl/pvtv2_b0_semfpn_demo.py')

# Runs in a fresh Python without mtl_pvt: each exported branch through its
# library's own inference API; the predictions go to a file.
PLAIN_INFERENCE = '''
import json, sys
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope


def classify(config, checkpoint, image):
    from mmpretrain.apis import ImageClassificationInferencer
    # it builds its pipeline in the current default scope, which mmdet's
    # and mmseg's APIs set to theirs
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(
            config, pretrained=checkpoint, device='cpu')
        return inferencer(image, return_datasamples=True)[0]


out = {}
for task, (config, checkpoint, image) in json.loads(sys.argv[1]).items():
    library = Config.fromfile(config).default_scope
    if library == 'mmpretrain':
        sample = classify(config, checkpoint, image)
        out[task] = dict(pred_score=sample.pred_score)
    elif library == 'mmdet':
        from mmdet.apis import inference_detector, init_detector
        sample = inference_detector(
            init_detector(config, checkpoint, device='cpu'), image)
        out[task] = {k: sample.pred_instances[k]
                     for k in ('bboxes', 'scores', 'labels')}
    else:
        from mmseg.apis import inference_model, init_model
        sample = inference_model(init_model(config, checkpoint, 'cpu'), image)
        out[task] = dict(seg_logits=sample.seg_logits.data,
                         pred_sem_seg=sample.pred_sem_seg.data)
mtl_modules = sorted(m for m in sys.modules if m.startswith('mtl_pvt'))
assert not mtl_modules, mtl_modules
out['mtl_pvt_imported'] = 'mtl_pvt' in sys.modules
torch.save(out, sys.argv[2])
'''


def demo_cfg(name):
    cfg = Config.fromfile(osp.join(REPO, MTL_DEMO.format(name)))
    # an untrained detector scores below mmdet's 0.05 threshold
    cfg.model.tasks.det.test_cfg.score_thr = 0.
    return cfg


def perturbed_mtl_checkpoint(cfg, path):
    """A randomly built MTL model with every parameter perturbed by
    its own noise (so stage copies differ), saved as a Runner checkpoint
    with each task's dataset_meta as MultiTaskDataset gives it."""
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    hub = MessageHub('mtl2stl_test')
    hub.update_scalar('train/loss', 1.)
    dataset_meta = {
        task: dict(loader.dataset.metainfo)
        for task, loader in cfg.test_dataloader.items()
    }
    torch.save(
        dict(
            meta=dict(iter=2, dataset_meta=dataset_meta),
            state_dict=model.state_dict(),
            message_hub=hub.state_dict()), path)
    return model


def plain_inference(spec, tmp_path):
    """Run :data:`PLAIN_INFERENCE` on ``spec`` in a fresh Python."""
    script = tmp_path / 'plain_inference.py'
    script.write_text(PLAIN_INFERENCE)
    out = tmp_path / 'plain_predictions.pth'
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    result = subprocess.run(
        [sys.executable, script, json.dumps(spec), out],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out)


@pytest.fixture(scope='module')
def exported_branches(tmp_path_factory, demo_images):
    """For each sharing: the paths of the exported branches, the MTL
    model's predictions and the branches' predictions in a fresh Python
    without mtl_pvt (one subprocess for all, to import the libraries once).
    """
    root = tmp_path_factory.mktemp('exported')
    paths, expected, spec = {}, {}, {}
    for sharing in SHARINGS:
        cfg = demo_cfg(sharing)
        mtl_ckpt = str(root / f'{sharing}.pth')
        model = perturbed_mtl_checkpoint(cfg, mtl_ckpt)
        expected[sharing] = mtl_predict(model, cfg, demo_images)
        paths[sharing] = save_exports(
            mtl_to_stl(cfg, mtl_ckpt), str(root / 'exported'), sharing)
        for task, files in paths[sharing].items():
            spec[f'{sharing}/{task}'] = [*files, demo_images[task]]
    return paths, expected, plain_inference(spec, root)


@pytest.mark.parametrize('sharing', SHARINGS)
def test_exported_branch_predicts_like_the_mtl_model(sharing,
                                                     exported_branches):
    paths, expected, got = exported_branches
    expected = expected[sharing]
    got = {t: got[f'{sharing}/{t}'] for t in ('cls', 'det', 'seg')}
    assert exported_branches[2]['mtl_pvt_imported'] is False
    torch.testing.assert_close(got['cls']['pred_score'],
                               expected['cls'].pred_score)
    det = expected['det'].pred_instances
    assert len(det) > 0
    for key in ('bboxes', 'scores', 'labels'):
        torch.testing.assert_close(got['det'][key], det[key])
    torch.testing.assert_close(got['seg']['seg_logits'],
                               expected['seg'].seg_logits.data)
    assert torch.equal(got['seg']['pred_sem_seg'],
                       expected['seg'].pred_sem_seg.data)

    for config, _ in paths[sharing].values():
        text = open(config).read()
        assert 'mtl_pvt' not in text
        assert 'custom_imports = dict(' in text and "'mmdet.models'" in text
    # the branches share stages 0-1 and, with full sharing, also 2-3
    states = {
        t: torch.load(ckpt)['state_dict']
        for t, (_, ckpt) in paths[sharing].items()
    }
    for stage in range(4):
        key = f'backbone.layers.{stage}.0.projection.weight'
        same = torch.equal(states['cls'][key], states['det'][key])
        assert same == (stage < 2 or sharing == 'full_share'), key


def test_exported_configs(tmp_path):
    cfg = demo_cfg('partial_share_s2')
    mtl_ckpt = str(tmp_path / 'mtl.pth')
    perturbed_mtl_checkpoint(cfg, mtl_ckpt)
    exports = mtl_to_stl(cfg, mtl_ckpt, tasks=['cls', 'seg'])
    assert set(exports) == {'cls', 'seg'}

    cls_cfg, cls_ckpt = exports['cls']
    assert cls_cfg.default_scope == 'mmpretrain'
    assert cls_cfg.custom_imports == dict(
        imports=['mmdet.models'], allow_failed_imports=False)
    assert cls_cfg.model.backbone == dict(
        type='mmdet.PyramidVisionTransformerV2',
        embed_dims=32,
        num_layers=[2, 2, 2, 2],
        mlp_ratios=[8, 8, 4, 4],
        drop_path_rate=0.1,
        out_indices=(3, ),
        init_cfg=None)
    assert [n.type for n in cls_cfg.model.neck] == \
        ['mmdet.DyHead', 'GlobalAveragePooling']
    assert cls_cfg.test_dataloader.dataset.type == 'ImageNet'
    assert cls_cfg.test_dataloader.dataset.metainfo.classes == \
        ('car', 'bus', 'clock', 'bottle')
    assert cls_cfg.test_evaluator == dict(type='Accuracy', topk=(1, ))
    assert cls_cfg.val_cfg == dict(type='ValLoop')
    assert cls_ckpt['meta']['dataset_meta']['classes'] == \
        ('car', 'bus', 'clock', 'bottle')
    mtl_state = torch.load(mtl_ckpt)['state_dict']
    cls_path = {'0': 'cls_det_seg', '1': 'cls_det_seg', '2': 'cls', '3': 'cls'}
    expected = {
        k[len('tasks.cls.'):]
        for k in mtl_state if k.startswith('tasks.cls.')
    }
    for key in mtl_state:
        if key.startswith('backbone.stages.'):
            _, _, stage, copy_name, rest = key.split('.', 4)
            if cls_path[stage] == copy_name:
                expected.add(f'backbone.layers.{stage}.{rest}')
    assert set(cls_ckpt['state_dict']) == expected

    seg_cfg, _ = exports['seg']
    assert seg_cfg.default_scope == 'mmseg'
    assert seg_cfg.model.type == 'EncoderDecoder'
    assert seg_cfg.model.backbone.out_indices == (0, 1, 2, 3)
    assert [t.type for t in seg_cfg.test_pipeline] == \
        ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']


def test_plain_neck_equals_list_global_average_pooling():
    register_all_modules()
    mtl_neck = MODELS.build(dict(type='mtl_pvt.ListGlobalAveragePooling'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        plain = MODELS.build([
            dict(
                type='mmdet.DyHead',
                in_channels=8,
                out_channels=8,
                num_blocks=0),
            dict(type='GlobalAveragePooling'),
        ])
    assert not list(plain.parameters()) and not plain.state_dict()
    feats = [torch.randn(2, 4, 5, 5), torch.randn(2, 8, 3, 3)]
    expected, got = mtl_neck(feats), plain(feats)
    assert isinstance(got, tuple) and len(got) == 2
    for a, b in zip(expected, got):
        assert torch.equal(a, b)


def test_config_that_still_needs_mtl_pvt_is_refused():
    cfg = demo_cfg('full_share')
    model = build_model_from_config(cfg)
    cfg.model.tasks.seg.decode_head.type = 'mtl_pvt.SomeHead'
    with pytest.raises(ValueError) as error:
        export_config(cfg, model.backbone, 'seg')
    assert "model.decode_head.type: 'mtl_pvt.SomeHead'" in str(error.value)


def test_task_of_no_known_kind_is_refused():
    cfg = demo_cfg('full_share')
    model = build_model_from_config(cfg)
    cfg.model.tasks.seg.type = 'mtl_pvt.SharedPVTv2'
    with pytest.raises(
            ValueError,
            match=re.escape(
                "cannot export task 'seg': its task model "
                "'mtl_pvt.SharedPVTv2' is of no known kind ['cls', 'det', "
                "'seg']; name its kind in model.task_kinds")):
        export_config(cfg, model.backbone, 'seg')


def test_free_task_names_export_by_their_kind():
    """``imnet`` and ``places`` export as mmpretrain classifiers, ``coco``
    as an mmdet detector; each loads strictly in its library."""
    cfg = Config.fromfile(osp.join(REPO, FREE_NAMES))
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    exports = mtl_to_stl(cfg, dict(state_dict=model.state_dict()))
    assert list(exports) == ['imnet', 'places', 'coco']
    for task in ('imnet', 'places'):
        task_cfg, ckpt = exports[task]
        assert task_cfg.default_scope == 'mmpretrain'
        assert task_cfg.model.type == 'ImageClassifier'
        assert [m['type'] for m in task_cfg.model.neck] == \
            ['mmdet.DyHead', 'GlobalAveragePooling']
        assert task_cfg.visualizer.type == 'UniversalVisualizer'
        assert task_cfg.default_hooks.visualization == dict(
            type='VisualizationHook', enable=False)
        assert ckpt['meta']['exported_from']['task'] == task
        assert torch.equal(ckpt['state_dict']['head.fc.weight'],
                           model.state_dict()[f'tasks.{task}.head.fc.weight'])
    # the same task model and data: the same standalone config
    assert exports['imnet'][0].pretty_text == exports['places'][0].pretty_text
    det_cfg = exports['coco'][0]
    assert det_cfg.default_scope == 'mmdet'
    assert det_cfg.model.type == 'RetinaNet'
    assert det_cfg.visualizer.type == 'DetLocalVisualizer'
    assert det_cfg.default_hooks.visualization == dict(
        type='DetVisualizationHook')


def test_stl_mtl_stl_round_trip(tmp_path):
    register_all_modules()
    stl_states = {}
    for seed, (task, config) in enumerate(STL.items()):
        torch.manual_seed(seed)
        model = MODELS.build(Config.fromfile(osp.join(REPO, config)).model)
        model.init_weights()
        stl_states[task] = model.state_dict()
    cfg = demo_cfg('no_share')
    exports = mtl_to_stl(cfg, stl_to_mtl(cfg, stl_states))
    for task, (_, ckpt) in exports.items():
        state = ckpt['state_dict']
        assert list(state) == list(stl_states[task])
        for key, value in stl_states[task].items():
            assert torch.equal(state[key], value), key


def test_cli_exports_the_chosen_tasks(run_tool, tmp_path):
    cfg = demo_cfg('partial_share_s2')
    config = tmp_path / 'mtl.py'
    cfg.dump(str(config))
    mtl_ckpt = tmp_path / 'mtl.pth'
    perturbed_mtl_checkpoint(cfg, str(mtl_ckpt))
    out_dir = tmp_path / 'exported'
    result = run_tool('model_converters/mtl2stl.py', config, mtl_ckpt, out_dir,
                      '--tasks', 'det', 'seg')
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(out_dir)) == [
        'mtl_det.pth', 'mtl_det.py', 'mtl_seg.pth', 'mtl_seg.py'
    ]
    det = Config.fromfile(str(out_dir / 'mtl_det.py'))
    assert det.default_scope == 'mmdet' and det.model.type == 'RetinaNet'
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['depth'\]"):
        mtl_to_stl(cfg, str(mtl_ckpt), tasks=['depth'])
