"""Parameter and FLOP accounting of task paths, and the get_flops tool."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from mtl_pvt.analysis import (complexity_report, flatten_tensors,
                              resolve_input_shapes)
from mtl_pvt.apis import build_model_from_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

B2_BACKBONE = 24_849_856
B2_STAGES = (1_061_120, 2_484_864, 10_308_160, 10_995_712)
B2_STL = dict(cls=25_362_856, det=35_099_828, seg=29_116_502)
STL_NAMES = dict(cls='cls_in1k', det='retinanet_coco', seg='semfpn_ade20k')
SMALL = (64, 96)  # (H, W): a few seconds of tracing per path
# each kind's standard input (H, W): mmpretrain's crops, mmdet's get_flops
# default, mmseg's crops
STANDARD_SHAPES = dict(cls=(224, 224), det=(800, 1280), seg=(512, 512))


def build(rel_path, cfg_options=None):
    """A config's model, without backbone checkpoint."""
    return build_model_from_config(osp.join(REPO, rel_path), cfg_options)


def params_of(rel_path):
    return complexity_report(build(rel_path), with_flops=False)


@pytest.fixture(scope='module')
def b0_full_share_flops():
    """FLOPs of the b0 full-share paths at SMALL (traced once)."""
    model = build('configs/mtl/pvtv2_b0_full_share.py')
    return complexity_report(model, {'': SMALL})['tasks']


def test_b2_stage_sizes_add_up():
    assert sum(B2_STAGES) == B2_BACKBONE


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_stl_params(task):
    report = params_of(f'configs/stl/pvtv2_b2_{STL_NAMES[task]}.py')
    assert report['params_total'] == B2_STL[task]
    assert report['params_shared'] == 0
    assert list(report['tasks']) == [task]
    path = report['tasks'][task]
    assert path['params'] == B2_STL[task]
    assert path['kind'] == task
    assert path['input_shape'] == list(STANDARD_SHAPES[task])
    assert path['flops'] is None


def test_no_share_params():
    report = params_of('configs/mtl/pvtv2_b2_no_share.py')
    assert report['params_total'] == sum(B2_STL.values())
    assert report['params_shared'] == 0
    assert {t: r['params'] for t, r in report['tasks'].items()} == B2_STL


def test_full_share_params():
    report = params_of('configs/mtl/pvtv2_b2_full_share.py')
    assert report['params_total'] == sum(B2_STL.values()) - 2 * B2_BACKBONE
    assert report['params_shared'] == B2_BACKBONE
    # Each path is the whole single-task model.
    assert {t: r['params'] for t, r in report['tasks'].items()} == B2_STL
    assert report['tasks']['det']['params'] == 35_099_828


def test_partial_share_params():
    report = params_of('configs/mtl/pvtv2_b2_partial_share_s2.py')
    shared = B2_STAGES[0] + B2_STAGES[1]
    assert report['params_shared'] == shared
    assert report['params_total'] == sum(B2_STL.values()) - 2 * shared
    assert {t: r['params'] for t, r in report['tasks'].items()} == B2_STL


@pytest.mark.parametrize('task', ['cls', 'det', 'seg'])
def test_full_share_flops_equal_stl(task, b0_full_share_flops):
    """The shared backbone, unregistered in the task model, is traced."""
    stl = complexity_report(
        build(f'configs/stl/pvtv2_b0_{STL_NAMES[task]}.py'), {task: SMALL})
    expected = stl['tasks'][task]
    got = b0_full_share_flops[task]
    assert got['input_shape'] == list(SMALL)
    assert got['flops'] == expected['flops'] > 0
    assert got['backbone_flops'] == expected['backbone_flops'] > 0
    # The neck and heads add FLOPs (the classifier's head only a few).
    assert got['flops'] > got['backbone_flops']


def test_two_stage_detector_and_per_stage_groups():
    """Mask R-CNN needs image metas in tensor mode; a stage copy shared by
    two of the three tasks counts as shared."""
    # 1000 proposals would make the RoI heads the bulk of the test's time
    rpn = {'model.tasks.det.test_cfg.rpn': dict(nms_pre=50, max_per_img=50)}
    report = complexity_report(
        build('configs/mtl/pvtv2_b2_maskrcnn_upernet_partial_share_s3.py',
              rpn), {'': SMALL})
    # stages 0-2 shared by all tasks, stage 3 by det and seg
    assert report['params_shared'] == B2_BACKBONE
    paths = report['tasks']
    assert paths['cls']['params'] == B2_STL['cls']
    assert report['params_total'] == sum(
        r['params'] for r in paths.values()) - 2 * sum(B2_STAGES[:3]) - \
        B2_STAGES[3]
    det = paths['det']
    assert det['flops'] > det['backbone_flops'] > 0
    # mmcv's RoIAlign has no FLOP formula in MMEngine
    assert 'prim::PythonOp.RoIAlignFunction' in det['unsupported_ops']


def test_semfpn_b2_reference_flops():
    report = complexity_report(build('configs/stl/pvtv2_b2_semfpn_ade20k.py'))
    seg = report['tasks']['seg']
    assert seg['input_shape'] == [512, 512]
    assert seg['flops'] == pytest.approx(45.8e9, rel=5e-3)


def test_input_shapes():
    model = build('configs/mtl/pvtv2_b0_full_share.py')
    tasks = dict(model.tasks.items())
    assert resolve_input_shapes(tasks) == STANDARD_SHAPES
    # task name > kind > all tasks > standard
    shapes = resolve_input_shapes(tasks, {
        '': (32, 32),
        'seg': (64, 64),
        'cls': (96, 96)
    })
    assert shapes == dict(cls=(96, 96), det=(32, 32), seg=(64, 64))
    with pytest.raises(ValueError, match='depth'):
        resolve_input_shapes(tasks, {'depth': (32, 32)})


def test_flatten_tensors():
    a, b, c = torch.zeros(1), torch.ones(2), torch.ones(3)
    assert flatten_tensors(a) == (a, )
    nested = ([a, b], {'x': (c, None)})
    assert [t.numel() for t in flatten_tensors(nested)] == [1, 2, 3]


def load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'get_flops.py')
    spec = importlib.util.spec_from_file_location('get_flops', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / 'sub' / 'flops.json'
    tool = load_tool()
    returned = tool.main([
        osp.join(REPO, 'configs/demo/stl/pvtv2_b0_cls_demo.py'), '--shape',
        '48', '--shape', 'cls=64,96', '--out',
        str(out)
    ])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(returned))
    assert {'params_total', 'params_shared', 'tasks'} <= set(data)
    cls = data['tasks']['cls']
    assert {'params', 'flops', 'input_shape'} <= set(cls)
    assert cls['input_shape'] == [64, 96] and cls['flops'] > 0
    assert cls['params'] == data['params_total']
    table = capsys.readouterr().out
    assert f"{data['params_total']:,}" in table and 'GFLOPs' in table


def test_cli_params_only(tmp_path):
    out = tmp_path / 'params.json'
    load_tool().main([
        osp.join(REPO, 'configs/mtl/pvtv2_b0_partial_share_s1.py'),
        '--no-flops', '--out',
        str(out), '--cfg-options', 'model.backbone.share_stages=4'
    ])
    data = json.loads(out.read_text())
    assert set(data['tasks']) == {'cls', 'det', 'seg'}
    assert all(r['flops'] is None for r in data['tasks'].values())
    # --cfg-options applied: all four stages are shared.
    assert data['params_shared'] == 3_409_760


@pytest.mark.parametrize('text', ['abc', '1,2,3', 'det=0,4', 'det='])
def test_cli_rejects_bad_shapes(text):
    with pytest.raises(SystemExit):
        load_tool().parse_args(['config.py', '--shape', text])
