"""SharedPVTv2: layouts, equivalence with mmdet's backbone, initialisation."""
import pytest
import torch
from mmdet.models.backbones import PyramidVisionTransformerV2

from mtl_pvt.models import SharedPVTv2
from mtl_pvt.testing import to_official_layout

TASKS = ['cls', 'det', 'seg']
B0 = dict(embed_dims=32, num_layers=[2, 2, 2, 2])
# cls branches off after stage 2, det and seg share stage 3
TREE = [[TASKS]] * 3 + [[['cls'], ['det', 'seg']]]


def plain_b0(**kwargs):
    return PyramidVisionTransformerV2(**B0, **kwargs)


def shared_b0(**kwargs):
    kwargs.setdefault('share_stages', 4)
    return SharedPVTv2(TASKS, arch=B0, **kwargs)


def stage_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('k', range(5))
def test_share_stages_copies(k):
    backbone = shared_b0(share_stages=k)
    plain = plain_b0()
    for i, copies in enumerate(backbone.stages):
        expected = ['cls_det_seg'] if i < k else TASKS
        assert list(copies) == expected
    per_stage = [stage_params(layer) for layer in plain.layers]
    expected_total = sum(n * (1 if i < k else 3)
                         for i, n in enumerate(per_stage))
    assert stage_params(backbone) == expected_total


def test_stage_groups_tree():
    backbone = shared_b0(share_stages=None, stage_groups=TREE)
    assert list(backbone.stages[3]) == ['cls', 'det_seg']
    assert [k for k, _ in backbone.task_stages('seg')] == \
        ['cls_det_seg'] * 3 + ['det_seg']


@pytest.mark.parametrize('layout', [
    dict(share_stages=0),
    dict(share_stages=2),
    dict(share_stages=None, stage_groups=TREE)
])
def test_forward_equals_mmdet_backbone(layout):
    torch.manual_seed(0)
    plain = plain_b0(out_indices=(1, 3)).eval()
    backbone = shared_b0(out_indices=dict(det=(1, 3)), **layout).eval()
    backbone.load_state_dict(backbone.plain_to_shared(plain.state_dict()))
    x = torch.rand(2, 3, 64, 64)
    expected = plain(x)
    out = backbone(x, 'det')
    assert isinstance(out, tuple) and len(out) == 2
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b)
    assert [o.shape[1] for o in out] == backbone.out_channels('det') == \
        [64, 256]


def test_shared_to_plain_extracts_each_path():
    backbone = shared_b0(share_stages=None, stage_groups=TREE)
    with torch.no_grad():  # make every copy different from the others
        for p in backbone.parameters():
            p.add_(torch.randn_like(p))
    state = backbone.state_dict()
    for task in TASKS:
        plain = plain_b0()
        plain.load_state_dict(backbone.shared_to_plain(state, task))
        x = torch.rand(1, 3, 64, 64)
        with torch.no_grad():
            for a, b in zip(plain.eval()(x), backbone.eval()(x, task)):
                torch.testing.assert_close(a, b)
    # the path of 'seg' takes the copy of stage 3 it shares with 'det'
    seg_state = backbone.shared_to_plain(state, 'seg')
    assert torch.equal(seg_state['layers.3.2.weight'],
                       state['stages.3.det_seg.2.weight'])


def test_forward_tasks_runs_each_copy_once():
    backbone = shared_b0(share_stages=None, stage_groups=TREE).eval()
    calls = []

    def record(name):
        return lambda *_: calls.append(name)

    for i, copies in enumerate(backbone.stages):
        for key, stage in copies.items():
            stage[0].register_forward_hook(record((i, key)))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        outs = backbone.forward_tasks(x, TASKS)
    assert calls == [(0, 'cls_det_seg'), (1, 'cls_det_seg'),
                     (2, 'cls_det_seg'), (3, 'cls'), (3, 'det_seg')]
    with torch.no_grad():
        for task in TASKS:
            for a, b in zip(outs[task], backbone(x, task)):
                torch.testing.assert_close(a, b)


def test_drop_path_rates_as_plain_backbone():
    plain = plain_b0(drop_path_rate=0.3)
    backbone = SharedPVTv2(
        TASKS, arch=dict(B0, drop_path_rate=0.3), share_stages=1)
    for i, copies in enumerate(backbone.stages):
        expected = [b.attn.dropout_layer.drop_prob for b in plain.layers[i][1]]
        assert expected[-1] > 0
        for stage in copies.values():
            assert [b.attn.dropout_layer.drop_prob
                    for b in stage[1]] == expected


@pytest.mark.parametrize('layout', [dict(share_stages=k) for k in range(5)] +
                         [dict(share_stages=None, stage_groups=TREE)])
def test_official_checkpoint_initialises_every_copy(layout, tmp_path):
    source = plain_b0()
    path = tmp_path / 'pvt_v2_b0.pth'
    torch.save(to_official_layout(source.state_dict()), path)
    backbone = shared_b0(init_cfg=dict(checkpoint=str(path)), **layout)
    backbone.init_weights()
    for i, copies in enumerate(backbone.stages):
        for key, stage in copies.items():
            for name, value in source.layers[i].state_dict().items():
                torch.testing.assert_close(
                    stage.state_dict()[name], value, msg=f'{i}.{key}.{name}')


def test_random_init_makes_copies_equal():
    backbone = shared_b0(share_stages=0)
    backbone.init_weights()
    for copies in backbone.stages:
        first, *others = [c.state_dict() for c in copies.values()]
        for other in others:
            for name in first:
                assert torch.equal(first[name], other[name])


@pytest.mark.parametrize('value', [-1, 5, 2.0, '2'])
def test_share_stages_out_of_range(value):
    with pytest.raises(ValueError, match=f'but got {value!r}'):
        shared_b0(share_stages=value)


def test_grouping_without_a_stage_for_a_task():
    groups = [[TASKS]] * 3 + [[['cls'], ['det']]]
    with pytest.raises(
            ValueError, match=r"stage_groups\[3\] leaves task\(s\) \['seg'\]"):
        shared_b0(share_stages=None, stage_groups=groups)


def test_grouping_that_merges_copies():
    groups = [[TASKS], [['cls'], ['det', 'seg']], [TASKS], [TASKS]]
    with pytest.raises(ValueError, match='merges tasks'):
        shared_b0(share_stages=None, stage_groups=groups)


def test_unknown_task_in_out_indices():
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['depth'\]"):
        shared_b0(out_indices=dict(depth=(0, 1)))
