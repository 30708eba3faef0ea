"""MultiTaskInferencer: the task models' own predictions, each shared stage
once per image, one drawing, JSON files, and the command-line tools."""
import copy
import importlib.util
import json
import os.path as osp
import re

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mtl_pvt.apis import MultiTaskInferencer
from mtl_pvt.demo import make_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = dict(
    full=osp.join(REPO, 'configs/demo/mtl/pvtv2_b0_full_share_demo.py'),
    partial=osp.join(REPO,
                     'configs/demo/mtl/pvtv2_b0_partial_share_s2_demo.py'),
    free_names=osp.join(
        REPO, 'configs/demo/mtl/pvtv2_b0_partial_share_s2_free_names_demo.py'))
TASKS = ['cls', 'det', 'seg']


def demo_cfg(sharing):
    """A demo MTL config whose model starts from random weights."""
    cfg = Config.fromfile(CONFIGS[sharing])
    cfg.model.backbone.init_cfg = None
    return cfg


def build_inferencer(sharing, **kwargs):
    torch.manual_seed(0)
    return MultiTaskInferencer(
        demo_cfg(sharing), device='cpu', show_progress=False, **kwargs)


def load_tool(path):
    """A script of the repository (tools/, demo/) as a module."""
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    """Two generated detection scenes (128 x 128 JPEGs) and a wider array
    (BGR) that the 128 x 128 keep-ratio test scale shrinks."""
    root = tmp_path_factory.mktemp('demo_data')
    make_demo_data(
        str(root),
        cls_train_per_class=1,
        cls_val_per_class=1,
        det_train=1,
        det_val=2,
        seg_train=1,
        seg_val=1)
    paths = [str(root / 'coco' / 'val2017' / f'{i:012d}.jpg') for i in (1, 2)]
    wide = mmcv.imresize(mmcv.imread(paths[0]), (200, 150))
    return dict(paths=paths, wide=wide)


@pytest.fixture(scope='module')
def full_share():
    return build_inferencer('full')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory, full_share):
    """A checkpoint of the random full-share model, its class names saved
    by task as a MultiTaskDataset gives them."""
    path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    meta = copy.deepcopy(full_share.model.dataset_meta)
    meta['cls']['classes'] = ['c0', 'c1', 'c2', 'c3']
    torch.save(
        dict(
            state_dict=full_share.model.state_dict(),
            meta=dict(dataset_meta=meta)), path)
    return str(path)


def stage_call_counts(backbone):
    """Hooks counting the runs of every stage copy (its patch embedding)."""
    counts, handles = {}, []
    for i, copies in enumerate(backbone.stages):
        for key, stage in copies.items():
            counts[(i, key)] = 0

            def hook(module, args, output, name=(i, key)):
                counts[name] += 1

            handles.append(stage[0].register_forward_hook(hook))
    return counts, handles


@pytest.mark.parametrize('image', ['path', 'wide'])
def test_predictions_equal_task_models_own(full_share, images, image):
    item = images['paths'][0] if image == 'path' else images['wide']
    data = full_share.pack(full_share.pipeline(item))
    own_samples = copy.deepcopy(data['data_samples'])
    pred = full_share.forward(data)[0]
    with torch.no_grad():
        own = {
            task:
            full_share.model.tasks[task].predict(data['inputs'],
                                                 own_samples[task])[0]
            for task in TASKS
        }
    assert torch.equal(pred['cls'].pred_score, own['cls'].pred_score)
    assert torch.equal(pred['cls'].pred_label, own['cls'].pred_label)
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(pred['det'].pred_instances[key],
                           own['det'].pred_instances[key])
    assert len(pred['det'].pred_instances) > 0
    assert torch.equal(pred['seg'].pred_sem_seg.data,
                       own['seg'].pred_sem_seg.data)
    # results in the coordinates of the original image
    height, width = (128, 128) if image == 'path' else (150, 200)
    assert pred['seg'].pred_sem_seg.shape == (height, width)
    boxes = pred['det'].pred_instances.bboxes
    assert boxes[:, 2].max() <= width and boxes[:, 3].max() <= height
    assert boxes[:, 2].max() > 128 or image == 'path'
    if image == 'wide':
        assert pred['det'].metainfo['scale_factor'] == (0.64, 0.64)


def test_one_input_tensor_as_det_preprocessor_makes_it(full_share, images):
    """The image is resized as in the det test pipeline (128 x 128, keep
    ratio) and normalised and padded as DetDataPreprocessor does."""
    results = full_share.pipeline(images['wide'])
    data = full_share.pack(results)
    chw = torch.from_numpy(results['img'].transpose(2, 0, 1).copy())
    det = full_share.model.tasks['det'].data_preprocessor(
        dict(inputs=[chw], data_samples=None), False)
    assert results['img'].shape == (96, 128, 3)
    assert data['inputs'].shape == (1, 3, 96, 128)
    assert torch.equal(data['inputs'], det['inputs'])
    meta = data['data_samples']['seg'][0].metainfo
    assert meta['ori_shape'] == (150, 200) and meta['img_shape'] == (96, 128)


@pytest.mark.parametrize('sharing', ['full', 'partial'])
def test_each_stage_copy_runs_once_per_image(sharing, images, full_share):
    inferencer = full_share if sharing == 'full' else \
        build_inferencer('partial')
    backbone = inferencer.model.backbone
    counts, handles = stage_call_counts(backbone)
    try:
        inferencer(images['paths'])
        assert counts == {name: 2 for name in counts}  # two images
        expected = [['cls_det_seg']] * 4 if sharing == 'full' else \
            [['cls_det_seg']] * 2 + [['cls', 'det', 'seg']] * 2
        assert [[k for i, k in counts if i == stage]
                for stage in range(4)] == expected
        # control: the task models on their own run stage 0 three times
        counts.update({name: 0 for name in counts})
        data = inferencer.pack(inferencer.pipeline(images['paths'][0]))
        with torch.no_grad():
            for task in TASKS:
                inferencer.model.tasks[task].predict(
                    data['inputs'], data['data_samples'][task])
        assert counts[(0, 'cls_det_seg')] == 3
    finally:
        for handle in handles:
            handle.remove()


def test_chosen_tasks(images):
    inferencer = build_inferencer('partial', tasks=['cls', 'seg'])
    counts, handles = stage_call_counts(inferencer.model.backbone)
    try:
        result = inferencer(images['paths'][0])
        assert list(result['predictions'][0]) == ['cls', 'seg']
        assert counts[(2, 'det')] == counts[(3, 'det')] == 0
        assert counts[(2, 'seg')] == counts[(0, 'cls_det_seg')] == 1
        result = inferencer(images['wide'], tasks=['det'])
        assert list(result['predictions'][0]) == ['det']
    finally:
        for handle in handles:
            handle.remove()


def test_drawing_and_json_files(full_share, images, tmp_path):
    # arrays are named by their number among the inferencer's images
    number = full_share.num_predicted_imgs + 1
    result = full_share(
        images['paths'][:1] + [images['wide']],
        out_dir=str(tmp_path),
        return_vis=True,
        topk=3)
    stems = [
        osp.splitext(osp.basename(images['paths'][0]))[0], f'{number:08d}'
    ]
    for stem, shape in zip(stems, [(128, 128), (150, 200)]):
        drawn = mmcv.imread(str(tmp_path / 'vis' / f'{stem}.png'))
        assert drawn.shape == panels_shape(shape, 3)
        with open(tmp_path / 'preds' / f'{stem}.json') as f:
            saved = json.load(f)
        assert set(saved) == set(TASKS)
        assert len(saved['cls']['topk_labels']) == 3
        assert saved['cls']['pred_class'] in ('car', 'bus', 'clock', 'bottle')
        assert len(saved['det']['bboxes']) == len(saved['det']['scores'])
        seg = mmcv.imread(saved['seg']['sem_seg_path'], flag='unchanged')
        assert seg.shape == shape and seg.max() < 5
    assert [v.shape for v in result['visualization']
            ] == [panels_shape((128, 128), 3),
                  panels_shape((150, 200), 3)]
    # each panel is the enlarged image (3x: 384 px) under a title, with its
    # own task drawn on it (seg, det, cls: the kinds' draw order)
    plain = mmcv.imread(images['paths'][0], channel_order='rgb')
    big = mmcv.imrescale(plain, 3., interpolation='bilinear')
    drawing = result['visualization'][0]
    for i in range(3):
        panel = drawing[32:, i * (384 + 8):i * (384 + 8) + 384]
        title = drawing[:32, i * (384 + 8):i * (384 + 8) + 384]
        assert (title < 128).any() and (title == 255).mean() > 0.8
        assert np.abs(panel.astype(int) - big).mean() > 1, i
        assert not np.array_equal(panel, drawing[32:, :384]) or i == 0


def panels_shape(shape, tasks):
    """The drawing of ``tasks`` panels of an image of ``shape``."""
    factor = -(-MultiTaskInferencer.panel_size // min(shape))
    h, w = shape[0] * factor, shape[1] * factor
    return (32 + h, tasks * w + 8 * (tasks - 1), 3)


def test_rescale_pred_fits_the_enlarged_image():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData, PixelData
    from mmseg.structures import SegDataSample

    from mtl_pvt.tasks import get_kind
    det = DetDataSample()
    det.pred_instances = InstanceData(
        bboxes=torch.tensor([[1., 2., 10., 20.]]),
        labels=torch.tensor([0]),
        scores=torch.tensor([.9]))
    big = get_kind('det').rescale_pred(det, 3)
    assert big.pred_instances.bboxes.tolist() == [[3., 6., 30., 60.]]
    assert det.pred_instances.bboxes.tolist() == [[1., 2., 10., 20.]]
    seg = SegDataSample()
    labels = torch.tensor([[[0, 1], [2, 3]]])
    seg.pred_sem_seg = PixelData(data=labels)
    big = get_kind('seg').rescale_pred(seg, 2).pred_sem_seg.data
    assert big.shape == (1, 4, 4)
    assert torch.equal(big[:, ::2, ::2], labels)
    assert torch.equal(big[:, 1::2, 1::2], labels)


def test_dicts_and_datasamples(full_share, images):
    as_dicts = full_share(images['wide'])['predictions'][0]
    samples = full_share(
        images['wide'], return_datasamples=True)['predictions'][0]
    assert np.array(as_dicts['seg']['sem_seg']).shape == (150, 200)
    assert as_dicts['det']['labels'] == samples['det'].pred_instances.labels\
        .tolist()
    assert as_dicts['cls']['pred_label'] == int(samples['cls'].pred_label)
    assert type(samples['seg']).__name__ == 'SegDataSample'
    json.dumps(as_dicts)


def test_errors(full_share, images, tmp_path):
    missing = str(tmp_path / 'no_such_image.jpg')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        full_share([images['paths'][0], missing])
    with pytest.raises(
            ValueError,
            match=r"unknown task\(s\) \['depth'\].*"
            r"\['cls', 'det', 'seg'\]"):
        full_share(images['paths'][0], tasks=['det', 'depth'])
    cfg = demo_cfg('full')
    cfg.model.tasks.seg.data_preprocessor.mean = [0., 0., 0.]
    with pytest.raises(ValueError, match='normalise differently'):
        MultiTaskInferencer(cfg, device='cpu')
    # without seg, one tensor serves cls and det
    MultiTaskInferencer(cfg, device='cpu', tasks=['cls', 'det'])


def test_free_task_names(images, tmp_path):
    """What a task is comes from its kind, not its name."""
    inferencer = build_inferencer('free_names')
    assert {
        t: k.name
        for t, k in inferencer.task_kinds.items()
    } == dict(
        imnet='cls', places='cls', coco='det')
    assert list(inferencer.visualizer) == ['det', 'cls']  # drawing order
    result = inferencer(images['paths'][0], out_dir=str(tmp_path), topk=2)
    pred = result['predictions'][0]
    assert list(pred) == ['imnet', 'places', 'coco']
    for task in ('imnet', 'places'):
        assert set(pred[task]) == {
            'pred_label', 'pred_score', 'pred_class', 'topk_labels',
            'topk_scores', 'topk_classes'
        }
        assert len(pred[task]['topk_labels']) == 2
    assert set(pred['coco']) == {'labels', 'scores', 'bboxes'}
    stem = osp.splitext(osp.basename(images['paths'][0]))[0]
    with open(tmp_path / 'preds' / f'{stem}.json') as f:
        assert json.load(f) == pred
    assert mmcv.imread(str(tmp_path / 'vis' / f'{stem}.png')).shape == \
        panels_shape((128, 128), 3)


def test_task_of_no_known_kind_is_refused():
    model = torch.nn.Module()
    model.tasks = torch.nn.ModuleDict(dict(imnet=torch.nn.Identity()))
    model.task_kinds = dict(imnet=None)
    with pytest.raises(
            TypeError,
            match=re.escape(
                "task 'imnet': its task model Identity is of no known kind "
                "['cls', 'det', 'seg']")):
        MultiTaskInferencer._known_kinds(model)


def test_infer_tool_and_image_demo(checkpoint, images, tmp_path, capsys):
    infer = load_tool('tools/infer.py')
    out_dir = tmp_path / 'out'
    infer.main([
        CONFIGS['full'], checkpoint, *images['paths'], '--tasks', 'cls', 'det',
        '--out-dir',
        str(out_dir), '--topk', '2', '--device', 'cpu', '--print-result'
    ])
    assert 'topk_labels' in capsys.readouterr().out
    for path in images['paths']:
        stem = osp.splitext(osp.basename(path))[0]
        assert (out_dir / 'vis' / f'{stem}.png').is_file()
        with open(out_dir / 'preds' / f'{stem}.json') as f:
            saved = json.load(f)
        assert set(saved) == {'cls', 'det'}
        # class names saved in the checkpoint win over the config's
        assert set(saved['cls']['topk_classes']) <= {'c0', 'c1', 'c2', 'c3'}

    demo = load_tool('demo/image_demo.py')
    out_file = tmp_path / 'result.png'
    demo.main([
        images['paths'][1], CONFIGS['full'], checkpoint, '--out-file',
        str(out_file), '--device', 'cpu'
    ])
    assert mmcv.imread(str(out_file)).shape == panels_shape((128, 128), 3)
    capsys.readouterr()
    # an image where the config belongs (image_demo.py's order): the
    # argument is named before anything is built
    with pytest.raises(SystemExit) as stop:
        infer.main([images['paths'][1], CONFIGS['full'], checkpoint])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert 'argument config' in err and 'looks like an image' in err
    assert 'CONFIG CHECKPOINT IMAGE' in err


def test_reuse_features_answers_only_that_tensor(full_share):
    backbone = full_share.model.backbone
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = backbone.forward_tasks(x, ['det'])
        counts, handles = stage_call_counts(backbone)
        try:
            with backbone.reuse_features(x, feats):
                assert backbone(x, 'det') is feats['det']
                assert counts[(0, 'cls_det_seg')] == 0
                other = backbone(x.clone(), 'det')  # another tensor
                backbone(x, 'seg')  # a task without features
            assert counts[(0, 'cls_det_seg')] == 2
            assert backbone(x, 'det') is not feats['det']  # context left
        finally:
            for handle in handles:
                handle.remove()
    for got, expected in zip(other, feats['det']):
        assert torch.equal(got, expected)
