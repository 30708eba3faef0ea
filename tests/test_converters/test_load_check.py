"""The pre-flight check of load_from / --resume: a checkpoint that does not
fit is converted (STL, official, other sharing) or stops the run."""
import logging

import pytest
import torch
from mmengine.config import Config

from mtl_pvt.apis import build_model_from_config
from mtl_pvt.converters.load_check import (CheckpointMismatchError,
                                           check_load_from)
from mtl_pvt.engine.checkpoint_fit import (MTL, OFFICIAL, STL, UNKNOWN,
                                           checkpoint_layout, fit_state,
                                           split_groups)
from mtl_pvt.testing.demo_runs import demo_config
from mtl_pvt.utils import register_all_modules


@pytest.fixture(scope='module')
def full_share(tmp_path_factory):
    """``(path, state)`` of a full-share demo model's checkpoint."""
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    model = build_model_from_config(Config.fromfile(demo_config()))
    model.init_weights()
    state = model.state_dict()
    path = tmp_path_factory.mktemp('ckpt') / 'full.pth'
    torch.save(dict(state_dict=state, meta=dict(iter=3)), path)
    return str(path), state


def config(tmp_path, name='pvtv2_b0_full_share_demo', **options):
    cfg = Config.fromfile(demo_config(name))
    cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def test_a_checkpoint_that_fits_passes(tmp_path, full_share):
    cfg = config(tmp_path, load_from=full_share[0])
    assert check_load_from(cfg) == []
    assert cfg.load_from == full_share[0]
    assert not (tmp_path / 'work').exists()


def test_full_share_checkpoint_into_a_partial_share_config(
        tmp_path, full_share):
    path, state = full_share
    cfg = config(tmp_path, 'pvtv2_b0_partial_share_s2_demo', load_from=path)
    (level, fit), (_, how) = check_load_from(cfg)
    assert level == logging.WARNING
    assert fit.startswith(f'load_from {path}: ')
    assert 'missing 228 model tensors: backbone.stages.2.cls (42), ' in fit
    assert 'unexpected 76 checkpoint tensors: backbone.stages.2.cls_det_seg' \
        ' (42), backbone.stages.3.cls_det_seg (34)' in fit
    converted = str(tmp_path / 'work' / 'converted_full.pth')
    assert cfg.load_from == converted
    assert how.startswith(f'converted {path} (multi-task layout) with '
                          f'stl2mtl into {converted}')
    new = torch.load(converted, weights_only=True)['state_dict']
    target = build_model_from_config(cfg).state_dict()
    assert fit_state(new, target).model_complete
    for task in ('cls', 'det', 'seg'):
        for key, value in state.items():
            if key.startswith('backbone.stages.3.cls_det_seg.'):
                own = key.replace('cls_det_seg', task)
                assert torch.equal(new[own], value), own
            if key.startswith('backbone.stages.0.') or \
                    key.startswith(f'tasks.{task}.'):
                assert torch.equal(new[key], value), key


def test_resume_that_does_not_fit_stops(tmp_path, full_share):
    cfg = config(tmp_path, load_from=full_share[0], resume=True)
    cfg.model.backbone.share_stages = 2
    with pytest.raises(
            CheckpointMismatchError,
            match='(?s)^resume .*'
            'a run resumes from a checkpoint of this very model'):
        check_load_from(cfg)


def test_partial_load_asked_for(tmp_path, full_share):
    cfg = config(tmp_path, load_from=full_share[0], load_from_partial=True)
    cfg.model.backbone.arch.mlp_ratios = [4, 4, 4, 4]
    assert check_load_from(cfg) == []
    cfg.load_from_partial = False
    with pytest.raises(CheckpointMismatchError) as error:
        check_load_from(cfg)
    assert 'stl2mtl cannot map it onto this config' in str(error.value)


def test_layouts():
    tensor = torch.zeros(1)
    assert checkpoint_layout({'backbone.stages.0.a.x': tensor}) == MTL
    assert checkpoint_layout({'module.backbone.layers.0.x': tensor}) == STL
    assert checkpoint_layout({
        'patch_embed1.proj.weight': tensor,
        'block1.0.attn.q.weight': tensor
    }) == OFFICIAL
    assert checkpoint_layout({'fc.weight': tensor}) == UNKNOWN


def test_split_groups_with_underscores_in_task_names():
    tasks = ['det', 'seg_ade', 'seg']
    assert split_groups('det_seg_ade', tasks) == ['det', 'seg_ade']
    assert split_groups('seg_ade_seg', tasks) == ['seg_ade', 'seg']
    assert split_groups('seg', tasks) == ['seg']
    assert split_groups('cls', tasks) is None


def test_resume_from_a_missing_checkpoint(tmp_path):
    cfg = config(tmp_path, resume=True)
    (tmp_path / 'work').mkdir()
    (tmp_path / 'work' / 'last_checkpoint').write_text('gone/iter_8.pth')
    with pytest.raises(
            CheckpointMismatchError,
            match='^cannot resume: .*'
            'last_checkpoint names gone/iter_8.pth, which does '
            'not exist$'):
        check_load_from(cfg)
