"""stl2mtl: MTL checkpoints from STL and official PVT v2 checkpoints."""
import copy
import importlib.util
import os.path as osp

import pytest
import torch
from mmdet.apis import inference_detector, init_detector
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import MODELS
from mmengine.runner import Runner
from mmpretrain.apis import ImageClassificationInferencer
from mmseg.apis import inference_model, init_model

from mtl_pvt import register_all_modules
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.converters import load_checkpoint_file, stl_to_mtl
from mtl_pvt.testing import mtl_predict, to_official_layout

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STL = dict(
    cls='configs/demo/stl/pvtv2_b0_cls_demo.py',
    det='configs/demo/stl/pvtv2_b0_retinanet_demo.py',
    seg='configs/demo/stl/pvtv2_b0_semfpn_demo.py')
MTL_DEMO = 'configs/demo/mtl/pvtv2_b0_{}_demo.py'
RESNET_DEMO = 'configs/demo/mtl/resnet18_w16_partial_share_s2_demo.py'
FREE_NAMES_DEMO = ('configs/demo/mtl/'
                   'pvtv2_b0_partial_share_s2_free_names_demo.py')
DATASET_META = dict(
    cls=dict(classes=('car', 'bus', 'clock', 'bottle')),
    det=dict(classes=('car', 'bus', 'clock', 'bottle')),
    seg=dict(classes=('wall', 'car', 'bus', 'clock', 'bottle')))


def load_cfg(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    if 'tasks' in cfg.model:
        # an untrained detector scores below mmdet's 0.05 threshold
        cfg.model.tasks.det.test_cfg.score_thr = 0.
    elif cfg.model.type == 'RetinaNet':
        cfg.model.test_cfg.score_thr = 0.
    return cfg


def runner_checkpoint(model):
    """``model`` saved as the Runner saves it (meta, message hub)."""
    hub = MessageHub('stl2mtl_test')
    hub.update_scalar('train/loss', 1.5)
    return dict(
        meta=dict(epoch=1, iter=2),
        state_dict=model.state_dict(),
        message_hub=hub.state_dict())


@pytest.fixture(scope='module')
def stl_checkpoints(tmp_path_factory):
    """Random-init STL demo models saved as Runner checkpoints."""
    register_all_modules()
    root = tmp_path_factory.mktemp('stl_ckpts')
    paths = {}
    for seed, (task, config) in enumerate(STL.items()):
        torch.manual_seed(seed)
        model = MODELS.build(load_cfg(config).model)
        model.init_weights()
        ckpt = runner_checkpoint(model)
        ckpt['meta']['dataset_meta'] = DATASET_META[task]
        paths[task] = str(root / f'{task}.pth')
        torch.save(ckpt, paths[task])
    return paths


def assert_same_prediction(task, expected, got):
    if task == 'cls':
        torch.testing.assert_close(got.pred_score, expected.pred_score)
    elif task == 'det':
        assert len(expected.pred_instances) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(got.pred_instances[key],
                                       expected.pred_instances[key])
    else:
        torch.testing.assert_close(got.seg_logits.data,
                                   expected.seg_logits.data)
        assert torch.equal(got.pred_sem_seg.data, expected.pred_sem_seg.data)


def stl_predict(task, path, checkpoint, image):
    """The prediction of an STL demo model by its library's own API."""
    cfg = load_cfg(path)
    if task == 'cls':
        inferencer = ImageClassificationInferencer(
            cfg, pretrained=checkpoint, device='cpu')
        return inferencer(image, return_datasamples=True)[0]
    if task == 'det':
        return inference_detector(
            init_detector(cfg, checkpoint, device='cpu'), image)
    # mmseg reads test_pipeline and drops LoadAnnotations from it itself
    cfg.test_pipeline = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if not t['type'].endswith('LoadAnnotations')
    ]
    return inference_model(init_model(cfg, checkpoint, 'cpu'), image)


def test_no_share_from_stl_checkpoints_predicts_like_stl_models(
        stl_checkpoints, demo_images):
    cfg = load_cfg(MTL_DEMO.format('no_share'))
    ckpt = stl_to_mtl(cfg, stl_checkpoints)
    assert ckpt['meta']['missing_keys'] == []
    assert ckpt['meta']['unexpected_keys'] == []
    assert ckpt['meta']['dataset_meta'] == DATASET_META
    model = build_model_from_config(cfg)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    mtl = mtl_predict(model, cfg, demo_images)
    for task, path in STL.items():
        stl = stl_predict(task, path, stl_checkpoints[task], demo_images[task])
        assert_same_prediction(task, stl, mtl[task])


def plain_pvt_b0(seed=0):
    """A randomly initialised mmdet PVT v2-b0, as the b0 configs use it."""
    register_all_modules()
    torch.manual_seed(seed)
    backbone = MODELS.build(
        dict(
            type='mmdet.PyramidVisionTransformerV2',
            embed_dims=32,
            num_layers=[2, 2, 2, 2],
            mlp_ratios=[8, 8, 4, 4]))
    backbone.init_weights()
    return backbone


def test_official_checkpoint_seeds_every_copy_and_the_head(tmp_path):
    plain = plain_pvt_b0().state_dict()
    official = to_official_layout(plain, num_classes=1000)
    path = str(tmp_path / 'pvt_v2_b0.pth')
    torch.save(official, path)  # a bare state dict, like the release
    ckpt = stl_to_mtl(
        osp.join(REPO, 'configs/mtl/pvtv2_b0_no_share.py'), pvt_official=path)
    state = ckpt['state_dict']
    copies = ckpt['meta']['backbone_sources']
    assert len(copies) == 12 and set(copies.values()) == {'official'}
    for copy_name in copies:
        stage = int(copy_name.split('.')[1])
        head = f'layers.{stage}.'
        stage_keys = [k for k in plain if k.startswith(head)]
        assert stage_keys
        for key in stage_keys:
            new_key = f'backbone.{copy_name}.{key[len(head):]}'
            assert torch.equal(state[new_key], plain[key]), new_key
    assert torch.equal(state['tasks.cls.head.fc.weight'],
                       official['head.weight'])
    assert torch.equal(state['tasks.cls.head.fc.bias'], official['head.bias'])
    missing = ckpt['meta']['missing_keys']
    assert missing and all(
        k.startswith(('tasks.det.', 'tasks.seg.')) for k in missing)


def test_torchvision_resnet_seeds_every_copy_of_a_shared_resnet(tmp_path):
    """A ResNet's official checkpoint is torchvision's layout (mmdet's
    ResNet keys and fc.*): SharedResNet reads it as PVT v2 reads its own,
    through the same converter and CLI."""
    from mmdet.models.backbones import ResNet
    cfg = load_cfg(RESNET_DEMO)
    torch.manual_seed(0)
    arch = {k: v for k, v in cfg.model.backbone.arch.items()}
    plain = ResNet(**arch).state_dict()
    official = dict(
        plain, **{
            'fc.weight': torch.rand(1000, 128),
            'fc.bias': torch.rand(1000)
        })
    path = str(tmp_path / 'resnet18_w16.pth')
    torch.save(official, path)
    out = str(tmp_path / 'mtl_init.pth')
    assert load_tool().main(
        [cfg.filename, out, '--official', path, '--no-official-head']) == 0
    ckpt = torch.load(out, weights_only=False)
    copies = ckpt['meta']['backbone_sources']
    # stages 0-1 shared, 2-3 per task: 2 + 2 x 3 copies
    assert len(copies) == 8 and set(copies.values()) == {'official'}
    state = ckpt['state_dict']
    for key, value in plain.items():
        stage = 0 if key.startswith(('conv1.', 'bn1.', 'layer1.')) else \
            int(key[len('layer')]) - 1
        rest = key if stage == 0 else key.split('.', 1)[1]
        for copy_name in (c for c in copies
                          if c.startswith(f'stages.{stage}.')):
            assert torch.equal(state[f'backbone.{copy_name}.{rest}'], value)
    assert 'tasks.cls.head.fc.weight' in ckpt['meta']['missing_keys']


def test_official_head_of_another_size(tmp_path):
    path = str(tmp_path / 'pvt_v2_b0.pth')
    torch.save(to_official_layout(plain_pvt_b0().state_dict()), path)
    cfg = load_cfg(MTL_DEMO.format('full_share'))  # 4 demo classes
    with pytest.raises(ValueError) as error:
        stl_to_mtl(cfg, pvt_official=path)
    assert 'tasks.cls.head.fc.weight: checkpoint (1000, 256) vs model ' \
        '(4, 256) (from official)' in str(error.value)
    assert '--no-official-head' in str(error.value)
    ckpt = stl_to_mtl(cfg, pvt_official=path, official_head=False)
    assert 'tasks.cls.head.fc.weight' in ckpt['meta']['missing_keys']


def test_backbone_from_chooses_the_source_of_shared_copies(
        stl_checkpoints, tmp_path):
    official = str(tmp_path / 'official.pth')
    torch.save(to_official_layout(plain_pvt_b0(7).state_dict()), official)
    cfg = load_cfg(MTL_DEMO.format('partial_share_s2'))
    sources = dict(cls=stl_checkpoints['cls'], det=stl_checkpoints['det'])
    plain = {t: torch.load(p)['state_dict'] for t, p in sources.items()}
    key = 'stages.{}.{}.0.projection.weight'
    plain_key = 'backbone.layers.{}.0.projection.weight'

    def convert(backbone_from):
        ckpt = stl_to_mtl(cfg, sources, official, backbone_from)
        return ckpt['state_dict'], ckpt['meta']['backbone_sources']

    state, copies = convert(None)
    assert copies == {
        'stages.0.cls_det_seg': 'cls',
        'stages.1.cls_det_seg': 'cls',
        'stages.2.cls': 'cls',
        'stages.2.det': 'det',
        'stages.2.seg': 'official',
        'stages.3.cls': 'cls',
        'stages.3.det': 'det',
        'stages.3.seg': 'official'
    }
    assert torch.equal(state['backbone.' + key.format(2, 'det')],
                       plain['det'][plain_key.format(2)])
    state, copies = convert('average')
    assert copies['stages.1.cls_det_seg'] == 'average(cls, det)'
    assert copies['stages.2.det'] == 'det'
    torch.testing.assert_close(
        state['backbone.' + key.format(1, 'cls_det_seg')],
        (plain['cls'][plain_key.format(1)] + plain['det'][plain_key.format(1)])
        / 2)
    _, copies = convert('det')
    assert copies['stages.0.cls_det_seg'] == 'det'
    assert copies['stages.3.cls'] == 'cls'
    _, copies = convert('official')
    assert copies['stages.0.cls_det_seg'] == 'official'
    with pytest.raises(ValueError, match="backbone_from='seg', but no"):
        stl_to_mtl(cfg, sources, official, 'seg')


def test_a_task_checkpoint_without_backbone(stl_checkpoints, tmp_path):
    det = torch.load(stl_checkpoints['det'])
    head_only = {
        k: v
        for k, v in det['state_dict'].items() if not k.startswith('backbone.')
    }
    cfg = load_cfg(MTL_DEMO.format('no_share'))
    with pytest.raises(ValueError, match='no source has backbone weights'):
        stl_to_mtl(cfg, dict(det=head_only))
    # another task provides the backbone, and the meta says so
    ckpt = stl_to_mtl(cfg, dict(det=head_only, cls=stl_checkpoints['cls']))
    copies = ckpt['meta']['backbone_sources']
    assert copies['stages.0.det'] == copies['stages.0.seg'] == 'cls'
    assert 'tasks.det.bbox_head.retina_cls.weight' in ckpt['state_dict']


def test_b0_checkpoint_into_b2_config_fails(run_tool, stl_checkpoints,
                                            tmp_path):
    out = tmp_path / 'b2.pth'
    result = run_tool('model_converters/stl2mtl.py',
                      osp.join(REPO, 'configs/mtl/pvtv2_b2_full_share.py'),
                      out, '--task', f"cls={stl_checkpoints['cls']}")
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr
    assert 'tensor(s) of another shape' in message
    for line in [
            'backbone.stages.0.cls_det_seg.0.projection.weight: checkpoint '
            '(32, 3, 7, 7) vs model (64, 3, 7, 7) (from cls)',
            'backbone.stages.3.cls_det_seg.2.weight: checkpoint (256,) vs '
            'model (512,) (from cls)',
            'tasks.cls.head.fc.weight: checkpoint (4, 256) vs model '
            '(1000, 512) (from cls)',
            # b2 has 3 blocks in stage 0, b0 two
            'backbone.stages.0.cls_det_seg.1.2.norm1.weight: model (64,), '
            'no source has it',
    ]:
        assert line in message
    assert not out.exists()


def test_converted_checkpoint_loads_with_load_from(run_tool, stl_checkpoints,
                                                   tmp_path):
    config = osp.join(REPO, MTL_DEMO.format('partial_share_s2'))
    out = tmp_path / 'mtl_init.pth'
    tasks = [f'--task={t}={stl_checkpoints[t]}' for t in ('cls', 'det', 'seg')]
    result = run_tool('model_converters/stl2mtl.py', config, out, *tasks,
                      '--backbone-from', 'average')
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert 'backbone.stages.0.cls_det_seg: average(cls, det, seg)' in output
    assert 'missing keys (0' in output and 'unexpected keys (0' in output

    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg.load_from = str(out)
    cfg.model.backbone.init_cfg = None
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.load_or_resume()
    expected = torch.load(out)['state_dict']
    state = runner.model.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def load_tool():
    """tools/model_converters/stl2mtl.py as a module."""
    path = osp.join(REPO, 'tools/model_converters/stl2mtl.py')
    spec = importlib.util.spec_from_file_location('stl2mtl_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_takes_free_task_names(stl_checkpoints, tmp_path):
    """``--task NAME=CHECKPOINT`` with the names of the config's tasks."""
    config = osp.join(REPO, FREE_NAMES_DEMO)
    out = tmp_path / 'free_names.pth'
    assert load_tool().main([
        config,
        str(out), '--task', f"imnet={stl_checkpoints['cls']}", '--task',
        f"coco={stl_checkpoints['det']}"
    ]) == 0
    ckpt = torch.load(out)
    state = ckpt['state_dict']
    assert ckpt['meta']['sources'] == dict(
        imnet=stl_checkpoints['cls'], coco=stl_checkpoints['det'])
    for task, source in (('imnet', 'cls'), ('coco', 'det')):
        stl_state, _ = load_checkpoint_file(stl_checkpoints[source])
        own = {k: v for k, v in stl_state.items() if 'backbone.' not in k}
        assert {
            k[len(f'tasks.{task}.'):]
            for k in state if k.startswith(f'tasks.{task}.')
        } == set(own)
        for key, value in own.items():
            assert torch.equal(state[f'tasks.{task}.{key}'], value), key
    # no checkpoint for places: its own keys stay as initialised
    assert not [k for k in state if k.startswith('tasks.places.')]
    assert ckpt['meta']['backbone_sources']['stages.3.places'] == 'imnet'


@pytest.mark.parametrize('args,message', [
    (['--task', 'depth=d.pth'
      ], "--task depth=d.pth: 'depth' is not a task of the MTL config (tasks: "
     "['cls', 'det', 'seg'])"),
    (['--task', 'cls=a.pth', '--task', 'seg=s.pth', '--task', 'cls=b.pth'
      ], '--task cls given twice: a.pth and b.pth'),
])
def test_cli_task_errors(args, message, tmp_path, capsys):
    out = tmp_path / 'never.pth'
    config = osp.join(REPO, MTL_DEMO.format('full_share'))
    assert load_tool().main([config, str(out), *args]) == 1
    assert capsys.readouterr().err == f'error: {message}\n'
    assert not out.exists()


@pytest.mark.parametrize(
    'args', [['--task', 'cls'], ['--task', '=c.pth'], ['--cls', 'c.pth']])
def test_cli_rejects_malformed_tasks(args):
    with pytest.raises(SystemExit) as exit_info:
        load_tool().parse_args(['config.py', 'out.pth', *args])
    assert exit_info.value.code == 2
