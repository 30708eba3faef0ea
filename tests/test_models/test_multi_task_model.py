"""MultiTaskModel: unmodified task models on one SharedPVTv2."""
import contextlib
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import MODELS

from mtl_pvt import register_all_modules
from mtl_pvt.testing import task_batch
from mtl_pvt.utils.randomness import derive_seed, seeded

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_BASES = dict(
    cls='pvtv2_b0_demo_cls',
    det='pvtv2_b0_demo_retinanet',
    seg='pvtv2_b0_demo_semfpn')
B0 = dict(embed_dims=32, num_layers=[2, 2, 2, 2])
# b2 stage sizes: patch embedding + blocks + norm of stages 0..3
B2_STAGES = [1_061_120, 2_484_864, 10_308_160, 10_995_712]


def demo_task_cfg(task):
    """The b0 demo model of ``task``, as the demo STL configs use it."""
    path = osp.join(REPO, 'configs/_base_/models', DEMO_BASES[task] + '.py')
    return Config.fromfile(path)[f'{task}_model']


def build(cfg):
    register_all_modules()
    return MODELS.build(cfg)


def mtl_cfg(tasks, **backbone):
    backbone.setdefault('share_stages', 4)
    return dict(
        type='mtl_pvt.MultiTaskModel',
        backbone=dict(type='mtl_pvt.SharedPVTv2', arch=B0, **backbone),
        tasks={t: demo_task_cfg(t)
               for t in tasks})


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def stl_to_mtl_names(named, mtl, task):
    """Entries named as in the STL model, renamed as in the MTL model."""
    renamed = {
        f'tasks.{task}.{k}': v
        for k, v in named.items() if not k.startswith('backbone.')
    }
    backbone = {
        k[len('backbone.'):]: v
        for k, v in named.items() if k.startswith('backbone.')
    }
    for k, v in mtl.backbone.plain_to_shared(backbone).items():
        renamed['backbone.' + k] = v
    return renamed


def losses_and_grads(model, batch, stream=contextlib.nullcontext):
    """Losses of one step on ``batch`` and the gradient of each parameter;
    the forward runs in the context ``stream()``."""
    model.train()
    model.zero_grad()
    torch.manual_seed(0)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    with stream():
        losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return losses, grads


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_single_task_equals_stl_model(task):
    stl = build(demo_task_cfg(task))
    stl.init_weights()
    mtl = build(mtl_cfg([task]))
    mtl.load_state_dict(stl_to_mtl_names(stl.state_dict(), mtl, task))
    batch = task_batch([task, task])
    # the multi-task model's forward of iteration 7 draws stochastic depth
    # and dropout from the task's stream of that iteration: so does the STL
    # model here
    MessageHub.get_current_instance().update_info('iter', 7)
    stl_losses, stl_grads = losses_and_grads(
        stl, batch, lambda: seeded(derive_seed(mtl.seed, 'forward', task, 7)))
    mtl_losses, mtl_grads = losses_and_grads(mtl, batch)

    assert set(mtl_losses) == {f'{task}.{k}' for k in stl_losses}
    for key, value in stl_losses.items():
        torch.testing.assert_close(mtl_losses[f'{task}.{key}'], value)
    stl_as_mtl = stl_to_mtl_names(stl_grads, mtl, task)
    assert set(stl_as_mtl) == set(mtl_grads)
    for name, grad in mtl_grads.items():
        if stl_as_mtl[name] is None:
            assert grad is None, name
        else:
            torch.testing.assert_close(grad, stl_as_mtl[name], msg=name)


def test_joint_loss_gradients_per_task():
    model = build(mtl_cfg(['cls', 'det', 'seg'], share_stages=2))
    model.init_weights()
    model.train()
    batch = task_batch(['cls', 'det', 'seg', 'cls', 'det', 'seg'])
    data = model.data_preprocessor(batch, True)
    torch.manual_seed(0)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'cls.loss', 'det.loss_cls', 'det.loss_bbox', 'seg.decode.loss_ce',
        'seg.decode.acc_seg'
    }
    params = dict(model.named_parameters())
    shared = [
        n for n in params if n.startswith('backbone.stages.0.')
        or n.startswith('backbone.stages.1.')
    ]
    assert shared and all('cls_det_seg' in n for n in shared)
    for task in ('cls', 'det', 'seg'):
        task_loss, _ = model.parse_losses({
            k: v
            for k, v in losses.items() if k.startswith(task + '.')
        })
        grads = torch.autograd.grad(
            task_loss,
            list(params.values()),
            retain_graph=True,
            allow_unused=True)
        grads = dict(zip(params, grads))
        for name in shared:
            assert grads[name] is not None, (task, name)
            assert torch.isfinite(grads[name]).all(), (task, name)
            assert grads[name].abs().sum() > 0, (task, name)
        for name, grad in grads.items():
            own = name.startswith(f'tasks.{task}.') or \
                name.split('.')[3:4] == [task]
            if name in shared or own:
                continue
            # another task's decoder or backbone copy
            assert grad is None or not grad.any(), (task, name)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert all(
        torch.isfinite(p.grad).all() for p in params.values()
        if p.grad is not None)


def test_predict_gives_standard_samples_in_batch_order():
    model = build(mtl_cfg(['cls', 'det', 'seg'], share_stages=0)).eval()
    model.init_weights()
    batch = task_batch(['seg', 'cls', 'det', 'cls'])
    with torch.no_grad():
        results = model.test_step(batch)
    assert [type(r).__name__ for r in results] == \
        ['SegDataSample', 'DataSample', 'DetDataSample', 'DataSample']
    assert results[0].pred_sem_seg.data.shape == (1, 128, 128)
    assert results[1].pred_score.shape == (4, )
    assert 'bboxes' in results[2].pred_instances
    assert [r.metainfo['task'] for r in results] == \
        ['seg', 'cls', 'det', 'cls']


def test_tensor_mode_and_extract_feat():
    model = build(mtl_cfg(['cls', 'seg'])).eval()
    data = model.data_preprocessor(task_batch(['cls', 'seg']), False)
    with torch.no_grad():
        outs = model(**data, mode='tensor')
        feats = model.extract_feat(data['inputs'])
    assert set(outs) == set(feats) == {'cls', 'seg'}
    assert outs['cls'].shape == (1, 4)
    assert outs['seg'].shape == (1, 5, 32, 32)
    assert len(feats['seg']) == 4  # FPN levels


def test_each_parameter_once():
    model = build(mtl_cfg(['cls', 'det', 'seg'], share_stages=1))
    names = [n for n, _ in model.named_parameters()]
    assert len({id(p) for p in model.parameters()}) == len(names)
    assert not [
        n for n in model.state_dict()
        if '.backbone.' in n and n.startswith('tasks.')
    ]
    for task in model.tasks.values():
        assert num_params(task.backbone) == 0


def real_cfg(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.model.backbone.init_cfg = None
    return cfg.model


def test_parameter_accounting_b2():
    stl = {
        t: num_params(build(real_cfg(f'configs/stl/pvtv2_b2_{t}.py')))
        for t in ('cls_in1k', 'retinanet_coco', 'semfpn_ade20k')
    }
    total = sum(stl.values())
    assert total == 25_362_856 + 35_099_828 + 29_116_502
    backbone = sum(B2_STAGES)
    expected = {
        'no_share': total,
        'partial_share_s1': total - 2 * sum(B2_STAGES[:1]),
        'partial_share_s2': total - 2 * sum(B2_STAGES[:2]),
        'partial_share_s3': total - 2 * sum(B2_STAGES[:3]),
        'full_share': total - 2 * backbone,
    }
    for name, count in expected.items():
        model = build(real_cfg(f'configs/mtl/pvtv2_b2_{name}.py'))
        assert num_params(model) == count, name


def test_decoder_needs_a_level_the_path_lacks():
    cfg = mtl_cfg(['det'], out_indices=dict(det=(1, 2, 3)))
    with pytest.raises(ValueError) as error:
        build(cfg)
    assert "task 'det': its neck (FPN) takes in_channels=[32, 64, 160, 256]" \
        in str(error.value)
    assert 'yields [64, 160, 256]' in str(error.value)


def test_head_reads_a_level_the_path_lacks():
    cfg = mtl_cfg(['seg'], out_indices=dict(seg=(0, 1, 2)))
    seg = cfg['tasks']['seg']
    seg.pop('neck')
    seg.decode_head = dict(
        type='UPerHead',
        in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3],
        channels=16,
        num_classes=5)
    with pytest.raises(ValueError, match=r'reads feature level\(s\) \[3\]'):
        build(cfg)


def test_task_names_must_agree():
    cfg = mtl_cfg(['cls', 'det'])
    cfg['backbone']['tasks'] = ['cls', 'seg']
    with pytest.raises(
            ValueError,
            match=r"backbone names tasks \['cls', "
            r"'seg'\] but the model has tasks \['cls', 'det'\]"):
        build(cfg)
    cfg = mtl_cfg(['cls', 'det'])
    cfg['loss_weights'] = dict(cls=1., seg=1.)
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['seg'\]"):
        build(cfg)


def test_batch_task_not_in_model():
    model = build(mtl_cfg(['cls', 'det']))
    with pytest.raises(KeyError, match="task 'seg', which the model"):
        model.data_preprocessor(task_batch(['cls', 'seg']), True)
    batch = task_batch(['cls', 'det'])
    batch['data_samples'][1].set_metainfo(dict(task=None))
    with pytest.raises(KeyError, match='data sample 1 of the batch has no'):
        model.data_preprocessor(batch, True)


def test_static_loss_weights():
    cfg = mtl_cfg(['cls', 'det'])
    model = build(cfg)
    model.init_weights()
    batch = task_batch(['cls', 'det'])
    plain, _ = losses_and_grads(model, batch)
    model.loss_weights['det'] = 0.5
    weighted, _ = losses_and_grads(model, batch)
    torch.testing.assert_close(weighted['cls.loss'], plain['cls.loss'])
    for a, b in zip(weighted['det.loss_cls'], plain['det.loss_cls']):
        torch.testing.assert_close(a, 0.5 * b)
    cfg['loss_weights'] = dict(det=-1.)
    with pytest.raises(
            ValueError,
            match=r"loss_weights must be finite and >= 0, but "
            r"got \{'det': -1.0\}"):
        build(cfg)
