"""What a user's mistakes and early training do to a ``tools/train.py`` run
of a demo multi-task config: each fault ends with a message that names it,
and nothing that was good is lost.

Every run is a ``tools/train.py`` process (forked from one that imported
the libraries once: ``train_fork_server``) on a tiny copy of the demo data,
one sample per task and step, a few iterations (``mtl_pvt.testing.
demo_runs``).
"""
import glob
import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mtl_pvt import register_all_modules
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.engine.checkpoint_fit import nonfinite_keys
from mtl_pvt.testing.demo_runs import (REPO, demo_config, load_weights,
                                       make_tiny_demo_data, tiny_options,
                                       work_dir_log)

# The tiny demo data's segmentation images show a car and a bus; the bus
# comes first (seed 0). A NaN weight of 'car' makes every step with the car
# image NaN, the first at iteration 2 (after iter_1.pth).
CAR_NAN = 'model.tasks.seg.decode_head.loss_decode.class_weight=' \
    '[1.0,nan,1.0,1.0,1.0]'
STL_DET = osp.join(REPO, 'configs/demo/stl/pvtv2_b0_retinanet_demo.py')


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('fault_demo')))


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """State dicts of the STL RetinaNet demo and of the full-share demo."""
    register_all_modules(init_default_scope=False)
    root = tmp_path_factory.mktemp('fault_ckpts')
    torch.manual_seed(0)
    paths = {}
    for name, config in (('stl_det', STL_DET), ('full', demo_config())):
        model = build_model_from_config(Config.fromfile(config))
        model.init_weights()
        paths[name] = str(root / f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict()), paths[name])
    return paths


@pytest.fixture
def train(train_fork_server, tmp_path):
    """``train(work_dir, options, *args, cwd=...)`` runs tools/train.py on
    the full-share demo config: ``(exit code, output)``."""
    runs = iter(range(100))

    def _train(work_dir, options, *args, cwd):
        log = tmp_path / f'run_{next(runs)}.log'
        return train_fork_server.train(
            demo_config(), work_dir, options, *args, cwd=cwd, log=log)

    return _train


def test_stl_checkpoint_is_converted_and_a_short_run_starts(
        train, demo_root, tmp_path, checkpoints):
    """An STL RetinaNet checkpoint in load_from is converted on the fly;
    a 2-iteration run (shorter than the demo's 20-iteration warm-up)
    starts; a validation whose detector returns nothing (delta-m skipped)
    keeps the best checkpoint and training goes on; all of it is said in
    the work dir's log."""
    work_dir = tmp_path / 'work'
    options = tiny_options(
        2, val_interval=1) + [
            f'load_from={checkpoints["stl_det"]}',
            # no box survives: CocoMetric returns nothing
            'model.tasks.det.test_cfg.score_thr=1.0',
            "default_hooks.checkpoint.save_best=['mtl/delta_m','seg/mIoU',"
            "'det/coco/bbox_mAP']",
        ]
    code, out = train(work_dir, options, cwd=demo_root)
    assert code == 0, out[-4000:]
    log = work_dir_log(str(work_dir))
    # the load: what did not fit, the conversion, what was loaded
    assert 'load_from ' + checkpoints['stl_det'] in log
    assert ': 0 of 243 model tensors fit\n  missing 243 model tensors: ' \
        'backbone.stages.0.cls_det_seg (42), ' in log
    converted = work_dir / 'converted_stl_det.pth'
    assert f'with stl2mtl into {converted}' in log
    assert "read as the 'det' STL checkpoint" in log
    stl = load_weights(checkpoints['stl_det'])
    mtl = load_weights(str(converted))
    for key, value in stl.items():
        if key.startswith('backbone.layers.0.'):
            mtl_key = key.replace('backbone.layers.0.',
                                  'backbone.stages.0.cls_det_seg.')
            assert torch.equal(mtl[mtl_key], value), key
        elif not key.startswith('backbone.'):
            assert torch.equal(mtl['tasks.det.' + key], value), key
    # the schedule fitted to the run, once
    assert log.count('max_iters=2 is shorter than the param_scheduler: '
                     'LinearLR [0, 20) -> [0, 1), PolyLR [20, end) -> '
                     '[1, end)') == 1
    # the validations without detection metrics
    assert "save_best: no 'mtl/delta_m' at iter 1 (delta-m was skipped: " \
        "task(s) ['det'] returned no metrics)" in log
    assert "save_best: no 'det/coco/bbox_mAP' at iter 2 (task 'det' " \
        'returned no metrics)' in log
    assert glob.glob(str(work_dir / 'best_seg_mIoU_iter_*.pth'))
    assert (work_dir / 'iter_2.pth').is_file()


def test_mismatched_checkpoint_stops_before_training(train, demo_root,
                                                     tmp_path, checkpoints):
    """Another mlp_ratios: no conversion can fit; the error lists the
    tensors and the way out, before the work dir exists."""
    work_dir = tmp_path / 'work'
    options = tiny_options(1) + [
        'model.backbone.arch.mlp_ratios=[4,4,4,4]',
        f'load_from={checkpoints["full"]}'
    ]
    code, out = train(work_dir, options, cwd=demo_root)
    assert code != 0
    assert 'CheckpointMismatchError' in out
    assert 'tensors of another shape (checkpoint vs model): ' \
        'backbone.stages.0.cls_det_seg.1.0.ffn.layers.0.weight ' \
        '(256, 32, 1, 1) vs model (128, 32, 1, 1)' in out
    assert 'load_from_partial=True' in out
    assert not work_dir.exists()
    # asked for explicitly, it loads what fits
    code, out = train(
        work_dir, options + ['load_from_partial=True'], cwd=demo_root)
    assert code == 0, out[-3000:]
    assert 'tensors of another shape' in work_dir_log(str(work_dir))


def test_resume_into_another_model_stops(train, demo_root, tmp_path,
                                         checkpoints):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(checkpoints['full'])
    options = tiny_options(1) + ['model.backbone.arch.mlp_ratios=[4,4,4,4]']
    code, out = train(work_dir, options, '--resume', cwd=demo_root)
    assert code != 0
    assert f'resume {checkpoints["full"]}: ' in out
    assert 'a run resumes from a checkpoint of this very model' in \
        out
    assert 'Adam' not in out  # stopped before the optimizer is built


@pytest.mark.parametrize(
    'fault,messages',
    [
        # the gradients of step 2 overflow: its weights are not saved
        # (without per-task clipping, whose per-task gradient check would
        # stop the step before the optimizer)
        ([
            'optim_wrapper.optimizer.lr=10000.0',
            'optim_wrapper.task_clip_grad=None'
        ], [
            'FloatingPointError: not saving a checkpoint at iteration 2: ',
            ' tensors are not finite (backbone.stages.0.cls_det_seg (42), '
        ]),
        # a class weight of NaN: the loss of the first step with the car image
        ([CAR_NAN], [
            'FloatingPointError: non-finite loss at iteration 2: ',
            "['seg.decode.loss_ce'] (tasks ['seg'])"
        ]),
    ])
def test_nonfinite_training_stops_with_the_last_good_checkpoint(
        train, demo_root, tmp_path, fault, messages):
    work_dir = tmp_path / 'work'
    options = tiny_options(8) + fault + [
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=1'
    ]
    code, out = train(work_dir, options, cwd=demo_root)
    assert code != 0
    for message in messages:
        assert message in out
    last = (work_dir / 'last_checkpoint').read_text().strip()
    assert last == str(work_dir / 'iter_1.pth')
    assert osp.isfile(last)
    for path in glob.glob(str(work_dir / '*.pth')):
        assert nonfinite_keys(load_weights(path)) == [], path


def test_skipped_nonfinite_steps_are_counted(train, demo_root, tmp_path):
    """model.nonfinite_losses='skip': a class weight of NaN makes the loss
    of every step with the car image NaN; those steps are skipped,
    counted in the log, and the run ends."""
    work_dir = tmp_path / 'work'
    options = tiny_options(4) + [
        "model.nonfinite_losses='skip'",
        "optim_wrapper.type='MultiTaskOptimWrapper'", CAR_NAN
    ]
    code, out = train(work_dir, options, cwd=demo_root)
    assert code == 0, out[-3000:]
    scalars = [
        json.loads(line) for line in open(
            glob.glob(str(work_dir / '*/vis_data/scalars.json'))[0])
    ]
    skipped = [
        s['mtl.skipped_steps'] for s in scalars if 'mtl.skipped_steps' in s
    ]
    assert skipped and 0 < max(skipped) < 4
    assert nonfinite_keys(load_weights(str(work_dir / 'iter_4.pth'))) == []


@pytest.fixture
def bad_data(demo_root, tmp_path):
    """A private copy of the tiny demo data to break."""
    root = tmp_path / 'data_root'
    shutil.copytree(osp.join(demo_root, 'data'), root / 'data')
    return root


def test_label_outside_the_class_range_names_the_file(train, bad_data,
                                                      tmp_path):
    ann = sorted((bad_data / 'data/demo/ade/ADEChallengeData2016/'
                  'annotations/training').glob('*.png'))[0]
    label = np.array(Image.open(ann))
    label[:2, :2] = 200  # 199 after reduce_zero_label
    Image.fromarray(label).save(ann)
    code, out = train(tmp_path / 'work', tiny_options(2), cwd=bad_data)
    assert code != 0
    assert f"ValueError: task 'seg': {osp.relpath(ann, bad_data)}: label " \
        'value(s) [199] (4 pixels) outside the 5 classes 0..4 (255 is ' \
        'ignored)' in out
    assert 'out of bounds' not in out


def test_empty_list_file_names_the_task(train, bad_data, tmp_path):
    (bad_data / 'data/demo/imagenet/meta/train.txt').write_text('')
    code, out = train(tmp_path / 'work', tiny_options(2), cwd=bad_data)
    assert code != 0
    assert "failed to build the dataset of task 'cls': it has no samples " \
        '(data/demo/imagenet' in out


def test_misspelt_loss_type_is_named_before_the_work_dir(
        train, demo_root, tmp_path):
    work_dir = tmp_path / 'work'
    options = tiny_options(2) + [
        "model.tasks.det.bbox_head.loss_cls.type='FocalLosss'"
    ]
    code, out = train(work_dir, options, cwd=demo_root)
    assert code != 0
    assert "model.tasks.det.bbox_head.loss_cls.type: 'FocalLosss' is not " \
        "registered in scope 'mmdet' (registry 'model')" in out
    assert not work_dir.exists()


@pytest.mark.parametrize('name,message', [
    ('c.l.s', "model.tasks: task name 'c.l.s' contains '.': torch module "
     "names cannot contain '.'"),
    ('mtl', "model.tasks: task name 'mtl' is reserved: 'mtl/' prefixes"),
])
def test_a_task_name_that_cannot_be_one_stops_before_the_work_dir(
        train_fork_server, demo_root, tmp_path, name, message):
    """A fourth task under a name that cannot prefix module names, losses
    or metrics: the message names the config key, and the work dir of an
    earlier run stays as it was."""
    config = tmp_path / 'bad_name.py'
    config.write_text(f'_base_ = [{demo_config()!r}]\n'
                      f'model = dict(tasks={{{name!r}: _base_.cls_model}})\n')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'iter_4.pth').write_bytes(b'an earlier run')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_4.pth'))
    code, out = train_fork_server.train(
        str(config),
        work_dir,
        tiny_options(2),
        cwd=demo_root,
        log=tmp_path / 'run.log')
    assert code != 0
    assert f'ValueError: {message}' in out
    assert sorted(p.name for p in work_dir.iterdir()) == [
        'iter_4.pth', 'last_checkpoint'
    ]
    assert (work_dir / 'iter_4.pth').read_bytes() == b'an earlier run'
