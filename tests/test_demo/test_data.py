"""Tests of the procedural demo data and its command line."""
import collections
import functools
import hashlib
import importlib.util
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mtl_pvt.demo import ADE20K_LABEL_VALUES, DEMO_CLASSES, DEMO_SEG_CLASSES
from mtl_pvt.demo import data as demo_data
from mtl_pvt.demo import demo_scene
from mtl_pvt.demo import drawing as demo_drawing
from mtl_pvt.demo import make_demo_data, mask_to_bbox, read_demo_manifest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(
    cls_train_per_class=3,
    cls_val_per_class=2,
    det_train=4,
    det_val=3,
    seg_train=3,
    seg_val=2)
COCO_SPLITS = [('train2017', 160), ('val2017', 40)]
ADE_SPLITS = [('training', 120), ('validation', 30)]


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """The default demo data, drawn once for the module."""
    return make_demo_data(str(tmp_path_factory.mktemp('demo')), seed=0)


@pytest.fixture(scope='module')
def cli():
    """tools/misc/make_demo_data.py, imported as a module."""
    path = osp.join(REPO, 'tools', 'misc', 'make_demo_data.py')
    spec = importlib.util.spec_from_file_location('make_demo_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def file_hashes(root):
    """SHA-256 of every file under ``root``, by relative path."""
    hashes = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            hashes[osp.relpath(path, root)] = digest
    return hashes


def load_coco(demo, split):
    """The instances JSON of a COCO split."""
    path = osp.join(demo['coco_root'], 'annotations',
                    f'instances_{split}.json')
    with open(path) as f:
        return json.load(f)


def test_classes_exist_in_coco_and_ade20k():
    from mmdet.datasets import CocoDataset
    from mmseg.datasets import ADE20KDataset

    ade_classes = ADE20KDataset.METAINFO['classes']
    assert DEMO_SEG_CLASSES == ('wall', 'car', 'bus', 'clock', 'bottle')
    assert set(DEMO_CLASSES) <= set(CocoDataset.METAINFO['classes'])
    assert ADE20K_LABEL_VALUES == {
        name: ade_classes.index(name) + 1
        for name in DEMO_SEG_CLASSES
    }


def test_same_seed_same_bytes(tmp_path):
    for name, seed in [('a', 3), ('b', 3), ('c', 4)]:
        make_demo_data(str(tmp_path / name), seed=seed, **SMALL)
    a, b, c = (file_hashes(tmp_path / name) for name in 'abc')
    # 3 + 2 classification images per class, 4 + 3 COCO images and their
    # two JSONs, 3 + 2 ADE20K images and PNGs, two meta lists, a manifest.
    assert len(a) == 5 * 4 + 7 + 2 + 5 * 2 + 2 + 1
    assert a == b
    assert a.keys() == c.keys()
    drawn = [p for p in a if p.endswith(('.JPEG', '.jpg', '.png', '.json'))]
    assert all(a[p] != c[p] for p in drawn if p != 'demo_manifest.json')


def test_layout_and_counts(demo):
    assert demo['counts'] == dict(
        imagenet=dict(train=240, val=60),
        coco=dict(
            train=160,
            train_instances=demo['counts']['coco']['train_instances'],
            val=40,
            val_instances=demo['counts']['coco']['val_instances']),
        ade=dict(training=120, validation=30))
    assert read_demo_manifest(demo['out_dir'])['counts'] == demo['counts']
    samples = [
        (osp.join(demo['imagenet_root'], 'train', 'bus', 'bus_59.JPEG'), 64),
        (osp.join(demo['imagenet_root'], 'val', 'demo_val_59.JPEG'), 64),
        (osp.join(demo['coco_root'], 'val2017', '000000000040.jpg'), 128),
        (osp.join(demo['ade_root'], 'images', 'validation',
                  'ADE_val_00000030.jpg'), 128),
    ]
    for path, size in samples:
        with Image.open(path) as image:
            assert (image.format, image.mode) == ('JPEG', 'RGB')
            assert image.size == (size, size)
    png = osp.join(demo['ade_root'], 'annotations', 'training',
                   'ADE_train_00000120.png')
    with Image.open(png) as label_map:
        assert (label_map.format, label_map.mode) == ('PNG', 'L')


def test_incomplete_data_has_no_manifest(tmp_path):
    make_demo_data(str(tmp_path), seed=0, **SMALL)
    assert read_demo_manifest(str(tmp_path))['seed'] == 0
    os.remove(tmp_path / 'ade' / 'ADEChallengeData2016' / 'annotations' /
              'validation' / 'ADE_val_00000002.png')
    assert read_demo_manifest(str(tmp_path)) is None
    assert read_demo_manifest(str(tmp_path / 'missing')) is None


@pytest.mark.parametrize('split,num', [('train', 60), ('val', 15)])
def test_imagenet_dataset_loads(demo, split, num):
    from mmpretrain.datasets import ImageNet

    dataset = ImageNet(
        data_root=demo['imagenet_root'],
        split=split,
        metainfo=dict(classes=DEMO_CLASSES))
    assert dataset.CLASSES == DEMO_CLASSES
    labels = [info['gt_label'] for info in dataset]
    assert collections.Counter(labels) == {i: num for i in range(4)}
    for info in dataset:
        assert osp.isfile(info['img_path'])
        if split == 'train':
            folder = osp.basename(osp.dirname(info['img_path']))
            assert folder == DEMO_CLASSES[info['gt_label']]
    if split == 'val':
        # Flat and shuffled, like ILSVRC2012's val.
        assert labels != sorted(labels)


@pytest.mark.parametrize('split,num', COCO_SPLITS)
def test_coco_dataset_loads(demo, split, num):
    from mmdet.datasets import CocoDataset

    dataset = CocoDataset(
        data_root=demo['coco_root'],
        ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'{split}/'),
        metainfo=dict(classes=DEMO_CLASSES),
        pipeline=[])
    assert len(dataset) == num
    key = split[:-len('2017')]
    num_instances = [len(dataset[i]['instances']) for i in range(num)]
    assert sum(num_instances) == demo['counts']['coco'][f'{key}_instances']
    assert set(num_instances) <= {1, 2, 3}
    labels = set()
    for i in range(num):
        info = dataset[i]
        assert osp.isfile(info['img_path'])
        assert (info['width'], info['height']) == (128, 128)
        for instance in info['instances']:
            x1, y1, x2, y2 = instance['bbox']
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
            assert instance['ignore_flag'] == 0
            labels.add(instance['bbox_label'])
    assert labels == {0, 1, 2, 3}


def test_coco_json_format(demo):
    coco = load_coco(demo, 'val2017')
    assert coco['categories'] == [
        dict(id=i + 1, name=name, supercategory='object')
        for i, name in enumerate(DEMO_CLASSES)
    ]
    assert coco['images'][0] == dict(
        id=1, file_name='000000000001.jpg', width=128, height=128)
    ann_ids = [ann['id'] for ann in coco['annotations']]
    assert ann_ids == list(range(1, len(ann_ids) + 1))
    for ann in coco['annotations']:
        assert ann['iscrowd'] == 0
        assert ann['segmentation']['size'] == [128, 128]
        assert sum(ann['segmentation']['counts']) == 128 * 128
        # Roughly the 28-70 px objects that were asked for.
        assert 14 <= max(ann['bbox'][2:]) <= 71


def test_coco_masks_and_boxes_are_tight(demo):
    from pycocotools import mask as mask_utils

    coco = load_coco(demo, 'val2017')
    by_image = collections.defaultdict(list)
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)
    for image in coco['images']:
        scene = demo_scene(0, 'coco/val2017', image['id'] - 1)
        anns = by_image[image['id']]
        assert [a['category_id'] - 1 for a in anns] == scene['labels']
        for ann, mask in zip(anns, scene['masks']):
            rle = mask_utils.frPyObjects(ann['segmentation'], 128, 128)
            decoded = mask_utils.decode(rle).astype(bool)
            np.testing.assert_array_equal(decoded, mask)
            assert ann['bbox'] == mask_to_bbox(mask)
            assert ann['bbox'] == mask_utils.toBbox(rle).tolist()
            assert ann['area'] == mask.sum()
        assert_masks_are_drawn_pixels(scene)
        path = osp.join(demo['coco_root'], 'val2017', image['file_name'])
        assert_jpeg_matches(path, scene['image'])


def assert_masks_are_drawn_pixels(scene):
    """The masks hold exactly the pixels that drawing changed."""
    changed = np.any(scene['clean'] != scene['background'], axis=-1)
    union = np.any(scene['masks'], axis=0)
    assert not (changed & ~union).any()
    # A drawn pixel may, rarely, have the background's very colour.
    assert (union & ~changed).sum() <= 0.002 * union.sum()


def assert_jpeg_matches(path, image):
    """The JPEG at ``path`` encodes ``image`` (up to compression)."""
    with Image.open(path) as jpeg:
        decoded = np.asarray(jpeg.convert('RGB'), dtype=np.float32)
    # JPEG smooths away part of the noise (sigma 6); another image is ~30
    # away.
    assert np.abs(decoded - image).mean() < 10


def seg_targets(seed, split, index):
    """Expected label map in DEMO_SEG_CLASSES indices, from a redraw."""
    scene = demo_scene(seed, f'ade/{split}', index)
    target = np.zeros((128, 128), dtype=np.uint8)
    for label, mask in zip(scene['labels'], scene['masks']):
        target[mask] = label + 1
    return target


@pytest.mark.filterwarnings('ignore:`reduce_zero_label` will be deprecated')
@pytest.mark.parametrize('split,num', ADE_SPLITS)
def test_ade20k_dataset_loads(demo, split, num):
    from mmengine.registry import DefaultScope
    from mmseg.datasets import ADE20KDataset

    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = ADE20KDataset(
            data_root=demo['ade_root'],
            data_prefix=dict(
                img_path=f'images/{split}',
                seg_map_path=f'annotations/{split}'),
            metainfo=dict(classes=DEMO_SEG_CLASSES),
            pipeline=[dict(type='LoadAnnotations', reduce_zero_label=True)])
    assert len(dataset) == num
    assert dataset.metainfo['classes'] == DEMO_SEG_CLASSES
    seen = set()
    for i in range(num):
        results = dataset[i]
        seg_map = results['gt_seg_map']
        assert seg_map.shape == (128, 128)
        prefix = 'ADE_train' if split == 'training' else 'ADE_val'
        assert osp.basename(results['img_path']) == f'{prefix}_{i + 1:08d}.jpg'
        # Every pixel has a label: no 255 (ignored) at all.
        np.testing.assert_array_equal(seg_map, seg_targets(0, split, i))
        seen |= set(np.unique(seg_map).tolist())
    assert seen == set(range(len(DEMO_SEG_CLASSES)))


def test_ade20k_png_values(demo):
    folder = osp.join(demo['ade_root'], 'annotations', 'validation')
    values = set()
    for name in sorted(os.listdir(folder)):
        with Image.open(osp.join(folder, name)) as png:
            values |= set(np.unique(np.asarray(png)).tolist())
    assert values == set(ADE20K_LABEL_VALUES.values())


def test_colour_is_a_partial_cue(demo):
    # An object mostly has its class's colour, so a nearest-colour rule on
    # the mean of saturated pixels beats chance (25%), but it is wrong often
    # enough that a model must learn the shapes too.
    styles = {
        name: np.array(style['colour'])
        for name, style in demo_drawing._STYLES.items()
    }
    root = demo['imagenet_root']
    with open(osp.join(root, 'meta', 'val.txt')) as f:
        lines = [line.split() for line in f]
    hits = 0
    for rel, label in lines:
        with Image.open(osp.join(root, 'val', rel)) as jpeg:
            pixels = np.asarray(jpeg.convert('RGB')).reshape(-1, 3)
        spread = pixels.max(axis=1).astype(int) - pixels.min(axis=1)
        colour = pixels[spread > 90].mean(axis=0)
        nearest = min(styles, key=lambda n: np.abs(styles[n] - colour).sum())
        hits += nearest == DEMO_CLASSES[int(label)]
    assert 0.45 <= hits / len(lines) <= 0.8


def test_cli_skips_complete_data_and_forces(tmp_path, cli, capsys,
                                            monkeypatch):
    monkeypatch.setattr(cli, 'make_demo_data',
                        functools.partial(make_demo_data, **SMALL))
    out = tmp_path / 'demo'
    assert cli.main(['--out', str(out)]) == 0
    assert read_demo_manifest(str(out))['seed'] == 0
    assert 'Wrote demo data' in capsys.readouterr().out
    assert os.listdir(tmp_path) == ['demo']
    (out / 'marker').write_text('kept unless redrawn')

    assert cli.main(['--out', str(out)]) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert (out / 'marker').exists()

    assert cli.main(['--out', str(out), '--force']) == 0
    assert 'Wrote demo data' in capsys.readouterr().out
    assert not (out / 'marker').exists()
    assert read_demo_manifest(str(out))['seed'] == 0

    assert cli.main(['--out', str(out), '--seed', '1']) == 0
    assert read_demo_manifest(str(out))['seed'] == 1
    assert os.listdir(tmp_path) == ['demo']


def test_cli_refuses_foreign_folder(tmp_path, cli, capsys):
    (tmp_path / 'notes.txt').write_text('not demo data')
    assert cli.main(['--out', str(tmp_path)]) == 1
    assert '--force' in capsys.readouterr().err
    assert os.listdir(tmp_path) == ['notes.txt']


def test_cli_interrupted_run_leaves_nothing(tmp_path, cli, monkeypatch):

    def interrupted(out_dir, seed):
        make_demo_data(out_dir, seed=seed, **SMALL)
        os.remove(osp.join(out_dir, demo_data.MANIFEST_NAME))
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, 'make_demo_data', interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.main(['--out', str(tmp_path / 'demo')])
    assert os.listdir(tmp_path) == []
