"""Procedural demo datasets in the real ImageNet, COCO and ADE20K layouts.

:func:`make_demo_data` draws a handful of object categories that exist in
COCO's 80 classes and in ADE20K's 150 classes (:data:`DEMO_CLASSES`) and
writes three small datasets that the stock dataset classes of mmpretrain
(``ImageNet``), mmdet (``CocoDataset``) and mmseg (``ADE20KDataset``) load
as they are, given ``metainfo=dict(classes=...)``::

    <out>/imagenet/train/<class>/<class>_<k>.JPEG
    <out>/imagenet/val/demo_val_<k>.JPEG
    <out>/imagenet/meta/{train,val}.txt        "<path> <label>" lines
    <out>/coco/{train2017,val2017}/<12-digit id>.jpg
    <out>/coco/annotations/instances_{train,val}2017.json
    <out>/ade/ADEChallengeData2016/images/{training,validation}/*.jpg
    <out>/ade/ADEChallengeData2016/annotations/{training,validation}/*.png
    <out>/demo_manifest.json                   written last

Every category has its own silhouette and dominant colour, so that a tiny
model trained from scratch learns them in minutes on a CPU. The colour is
only a partial cue (an object takes another category's colour with
probability ``1 - COLOUR_CUE``), so that the shapes must be learned too and
the metrics leave room to tell models apart. The files are
byte-identical for a given seed: each image has its own random generator,
seeded by the seed, the split and the image's index.

Only numpy and Pillow are imported; nothing here needs torch.
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from .drawing import (CLS_SIZE, DEMO_CLASSES, DEMO_SEG_CLASSES, SCENE_SIZE,
                      demo_object_image, demo_scene, image_rng)

# Label values of ADE20K's annotation PNGs: the index of the class in
# mmseg's ``ADE20KDataset.METAINFO['classes']`` plus one (0 is "other",
# which ``reduce_zero_label`` maps to 255). Checked against mmseg by
# tests/test_demo/test_data.py.
ADE20K_LABEL_VALUES = {
    'wall': 1,
    'car': 21,
    'bus': 81,
    'bottle': 99,
    'clock': 149,
}

MANIFEST_NAME = 'demo_manifest.json'
GENERATOR_VERSION = 1
JPEG_QUALITY = 90

SPLITS = {
    'imagenet': ('train', 'val'),
    'coco': ('train2017', 'val2017'),
    'ade': ('training', 'validation'),
}


def _save_jpeg(image, path):
    """Save an RGB array as a JPEG of fixed quality."""
    Image.fromarray(image).save(path, format='JPEG', quality=JPEG_QUALITY)


def _write_lines(path, lines):
    """Write text lines with a final newline."""
    with open(path, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))


def _write_imagenet(root, seed, num_train, num_val):
    """The classification split: class folders, a flat val, meta lists."""
    for name in ('meta', 'val', *[f'train/{c}' for c in DEMO_CLASSES]):
        os.makedirs(osp.join(root, name), exist_ok=True)
    train = []
    for label, name in enumerate(DEMO_CLASSES):
        for k in range(num_train):
            rel = f'{name}/{name}_{k}.JPEG'
            scene = demo_object_image(seed, 'imagenet/train', label, k)
            _save_jpeg(scene['image'], osp.join(root, 'train', rel))
            train.append(f'{rel} {label}')
    labels = np.repeat(np.arange(len(DEMO_CLASSES)), num_val)
    labels = image_rng(seed, 'imagenet/val/order', 0).permutation(labels)
    val = []
    for k, label in enumerate(labels.tolist()):
        scene = demo_object_image(seed, 'imagenet/val', label, k)
        _save_jpeg(scene['image'], osp.join(root, 'val', f'demo_val_{k}.JPEG'))
        val.append(f'demo_val_{k}.JPEG {label}')
    _write_lines(osp.join(root, 'meta', 'train.txt'), train)
    _write_lines(osp.join(root, 'meta', 'val.txt'), val)
    return dict(train=len(train), val=len(val))


def mask_to_rle(mask):
    """Encode a mask as COCO's uncompressed RLE (column-major runs).

    Args:
        mask (numpy.ndarray): A bool (H, W) mask.

    Returns:
        dict: ``{'size': [H, W], 'counts': [...]}``, the runs starting with
        the number of zeros, as ``pycocotools.mask.frPyObjects`` reads it.
    """
    flat = mask.flatten(order='F').astype(np.int8)
    starts = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], starts, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return dict(size=list(mask.shape), counts=counts)


def mask_to_bbox(mask):
    """The tight COCO box ``[x, y, w, h]`` of a mask's pixels."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]


def _coco_annotations(scene, image_id, first_ann_id):
    """COCO annotations of a scene's visible objects."""
    anns = []
    for label, mask in zip(scene['labels'], scene['masks']):
        if not mask.any():
            continue
        anns.append(
            dict(
                id=first_ann_id + len(anns),
                image_id=image_id,
                category_id=label + 1,
                bbox=mask_to_bbox(mask),
                area=int(mask.sum()),
                iscrowd=0,
                segmentation=mask_to_rle(mask)))
    return anns


def _write_coco_split(root, seed, split, num):
    """Images and the instances JSON of one COCO split."""
    os.makedirs(osp.join(root, split), exist_ok=True)
    images, anns = [], []
    for k in range(num):
        image_id = k + 1
        file_name = f'{image_id:012d}.jpg'
        scene = demo_scene(seed, f'coco/{split}', k)
        _save_jpeg(scene['image'], osp.join(root, split, file_name))
        images.append(
            dict(
                id=image_id,
                file_name=file_name,
                width=SCENE_SIZE,
                height=SCENE_SIZE))
        anns += _coco_annotations(scene, image_id, len(anns) + 1)
    categories = [
        dict(id=i + 1, name=name, supercategory='object')
        for i, name in enumerate(DEMO_CLASSES)
    ]
    coco = dict(
        info=dict(
            description='mtl_pvt procedural demo data',
            version=str(GENERATOR_VERSION)),
        licenses=[],
        images=images,
        annotations=anns,
        categories=categories)
    with open(osp.join(root, 'annotations', f'instances_{split}.json'),
              'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    return len(images), len(anns)


def _write_coco(root, seed, num_train, num_val):
    """The detection splits in COCO 2017's layout."""
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    counts = {}
    for split, num in zip(SPLITS['coco'], (num_train, num_val)):
        key = split[:-len('2017')]
        counts[key], counts[f'{key}_instances'] = _write_coco_split(
            root, seed, split, num)
    return counts


def _ade_label_map(scene):
    """ADE20K label values: 'wall' everywhere, objects over it."""
    label_map = np.full(
        scene['image'].shape[:2], ADE20K_LABEL_VALUES['wall'], dtype=np.uint8)
    for label, mask in zip(scene['labels'], scene['masks']):
        label_map[mask] = ADE20K_LABEL_VALUES[DEMO_CLASSES[label]]
    return label_map


def _write_ade(root, seed, num_train, num_val):
    """The segmentation splits in ADEChallengeData2016's layout."""
    counts = {}
    for split, num in zip(SPLITS['ade'], (num_train, num_val)):
        img_dir = osp.join(root, 'images', split)
        ann_dir = osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        prefix = 'ADE_train' if split == 'training' else 'ADE_val'
        for k in range(num):
            stem = f'{prefix}_{k + 1:08d}'
            scene = demo_scene(seed, f'ade/{split}', k)
            _save_jpeg(scene['image'], osp.join(img_dir, f'{stem}.jpg'))
            Image.fromarray(_ade_label_map(scene)).save(
                osp.join(ann_dir, f'{stem}.png'))
        counts[split] = num
    return counts


def make_demo_data(out_dir,
                   seed=0,
                   *,
                   cls_train_per_class=60,
                   cls_val_per_class=15,
                   det_train=160,
                   det_val=40,
                   seg_train=120,
                   seg_val=30):
    """Write the three demo datasets and, last, their manifest.

    Args:
        out_dir (str): Folder to write into (created when missing). Files of
            an earlier run are overwritten, not removed.
        seed (int): Seed of all random choices; a seed gives byte-identical
            files. Defaults to 0.
        cls_train_per_class (int): ImageNet-style train images per class.
            Defaults to 60.
        cls_val_per_class (int): ImageNet-style val images per class.
            Defaults to 15.
        det_train (int): COCO-style train images. Defaults to 160.
        det_val (int): COCO-style val images. Defaults to 40.
        seg_train (int): ADE20K-style training images. Defaults to 120.
        seg_val (int): ADE20K-style validation images. Defaults to 30.

    Returns:
        dict: The manifest (seed, classes, counts per split, image sizes,
        ADE20K label values and data roots relative to ``out_dir``) with
        ``out_dir`` and absolute ``<name>_root`` paths added.
    """
    manifest = dict(
        generator='mtl_pvt.demo.data',
        version=GENERATOR_VERSION,
        seed=seed,
        classes=list(DEMO_CLASSES),
        seg_classes=list(DEMO_SEG_CLASSES),
        ade20k_label_values=ADE20K_LABEL_VALUES,
        image_size=dict(imagenet=CLS_SIZE, coco=SCENE_SIZE, ade=SCENE_SIZE),
        data_roots=dict(
            imagenet='imagenet', coco='coco', ade='ade/ADEChallengeData2016'))
    roots = {
        name: osp.join(out_dir, rel)
        for name, rel in manifest['data_roots'].items()
    }
    manifest['counts'] = dict(
        imagenet=_write_imagenet(roots['imagenet'], seed, cls_train_per_class,
                                 cls_val_per_class),
        coco=_write_coco(roots['coco'], seed, det_train, det_val),
        ade=_write_ade(roots['ade'], seed, seg_train, seg_val))
    with open(osp.join(out_dir, MANIFEST_NAME), 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write('\n')
    paths = {f'{name}_root': root for name, root in roots.items()}
    return dict(manifest, out_dir=out_dir, **paths)


def _count_files(folder, suffix):
    """Number of files ending with ``suffix`` under ``folder``."""
    names = [name for _, _, names in os.walk(folder) for name in names]
    return sum(name.endswith(suffix) for name in names)


def _expected_files(manifest):
    """(folder relative to the output, suffix, count) of every split."""
    counts, roots = manifest['counts'], manifest['data_roots']
    imagenet, coco, ade = roots['imagenet'], roots['coco'], roots['ade']
    expected = [(f'{imagenet}/meta', '.txt', 2),
                (f'{coco}/annotations', '.json', 2)]
    expected += [(f'{imagenet}/{split}', '.JPEG', counts['imagenet'][split])
                 for split in SPLITS['imagenet']]
    for split in SPLITS['coco']:
        key = split[:-len('2017')]
        expected.append((f'{coco}/{split}', '.jpg', counts['coco'][key]))
    for split in SPLITS['ade']:
        expected.append(
            (f'{ade}/images/{split}', '.jpg', counts['ade'][split]))
        expected.append(
            (f'{ade}/annotations/{split}', '.png', counts['ade'][split]))
    return expected


def read_demo_manifest(out_dir):
    """The manifest of a complete demo dataset, or None.

    Complete means: the manifest (written last) is there, comes from this
    generator's version, and every split holds as many files as it says.

    Args:
        out_dir (str): Folder given to :func:`make_demo_data`.

    Returns:
        dict | None: The manifest, None when the dataset is not complete.
    """
    try:
        with open(osp.join(out_dir, MANIFEST_NAME)) as f:
            manifest = json.load(f)
        if manifest.get('version') != GENERATOR_VERSION:
            return None
        expected = _expected_files(manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for folder, suffix, count in expected:
        if _count_files(osp.join(out_dir, folder), suffix) != count:
            return None
    return manifest
