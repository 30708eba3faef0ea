"""Data errors name the task, the file and the value before the loss sees
them: labels outside the class range, unreadable images, empty lists."""
import os

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from mmpretrain.structures import DataSample
from mmseg.structures import SegDataSample

from mtl_pvt.datasets import MultiTaskDataset
from mtl_pvt.datasets.sample_check import check_data_sample
from mtl_pvt.testing.demo_runs import demo_config, make_tiny_demo_data
from mtl_pvt.utils import register_all_modules


def seg_sample(values):
    sample = SegDataSample(metainfo=dict(seg_map_path='a.png'))
    sample.gt_sem_seg = PixelData(data=torch.tensor(values)[None])
    return sample


def test_segmentation_labels():
    check_data_sample(seg_sample([[0, 4], [255, 1]]), 'seg', (5, 255))
    with pytest.raises(ValueError) as error:
        check_data_sample(seg_sample([[0, 199], [199, 7]]), 'seg', (5, 255))
    assert str(error.value) == (
        "task 'seg': a.png: label value(s) [7, 199] (3 pixels) outside the "
        '5 classes 0..4 (255 is ignored)')


def test_classification_and_detection_labels():
    sample = DataSample(metainfo=dict(img_path='x.JPEG')).set_gt_label(7)
    with pytest.raises(
            ValueError,
            match=r"^task 'cls': x\.JPEG: class "
            r'label value\(s\) \[7\] outside the 4 classes 0\.\.3$'):
        check_data_sample(sample, 'cls', (4, 255))
    det = DetDataSample(metainfo=dict(img_path='y.jpg'))
    det.gt_instances = InstanceData(labels=torch.tensor([0, -1]))
    with pytest.raises(ValueError, match=r'box label value\(s\) \[-1\]'):
        check_data_sample(det, 'det', (4, 255))
    # nothing to check against without classes
    check_data_sample(sample, 'cls', (None, 255))


@pytest.fixture
def demo_cfg(tmp_path, monkeypatch):
    register_all_modules(init_default_scope=False)
    make_tiny_demo_data(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return Config.fromfile(demo_config()).train_dataloader.dataset


def test_unreadable_image_names_task_and_file(demo_cfg, tmp_path):
    dataset = MultiTaskDataset(**{
        k: v
        for k, v in demo_cfg.items() if k != 'type'
    })
    info = dataset.get_data_info(dataset.global_index('det', 0))
    with open(info['img_path'], 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(Exception) as error:
        dataset[dataset.global_index('det', 0)]
    assert str(
        error.value).startswith(f"task 'det', sample 0 ({info['img_path']}): ")


def test_missing_image_names_task_and_file(demo_cfg, tmp_path):
    dataset = MultiTaskDataset(**{
        k: v
        for k, v in demo_cfg.items() if k != 'type'
    })
    info = dataset.get_data_info(dataset.global_index('cls', 1))
    os.remove(info['img_path'])
    with pytest.raises(FileNotFoundError, match="^task 'cls', sample 1 "):
        dataset[dataset.global_index('cls', 1)]


def test_empty_list_file(demo_cfg, tmp_path):
    (tmp_path / 'data/demo/imagenet/meta/train.txt').write_text('')
    with pytest.raises(
            ValueError,
            match="^failed to build the dataset of "
            "task 'cls': it has no samples"):
        MultiTaskDataset(**{k: v for k, v in demo_cfg.items() if k != 'type'})
