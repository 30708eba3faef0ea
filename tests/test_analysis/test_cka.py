"""Linear CKA, the stage features of task branches, and the CKA tool."""
import importlib.util
import json
import math
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from mtl_pvt.analysis.cka import (branch_cka, cross_model_cka,
                                  format_branch_cka, linear_cka,
                                  stage_features)
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.testing.tiny_mtl import make_mtl_model

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MTL_DEMO = osp.join(REPO, 'configs/demo/mtl/pvtv2_b0_partial_share_s2_demo.py')
STL_CLS_DEMO = osp.join(REPO, 'configs/demo/stl/pvtv2_b0_cls_demo.py')
# stages 0-1 shared by all, stage 2 by a and b, stage 3 per task
TREE = [[['a', 'b', 'seg']], [['a', 'b', 'seg']], [['a', 'b'], ['seg']],
        [['a'], ['b'], ['seg']]]


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """The inputs are tiny: threads only add overhead, which is large on a
    busy machine (3x the run time of this file)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def randn(*shape, seed=0):
    return torch.randn(
        *shape,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64)


def hsic_cka(x, y):
    """CKA from its HSIC definition, with an explicit centring matrix."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(k, m):
        return np.trace(k @ h @ m @ h) / (n - 1)**2

    k, m = x @ x.T, y @ y.T
    return hsic(k, m) / math.sqrt(hsic(k, k) * hsic(m, m))


def perturb(module, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))


def load_tool():
    path = osp.join(REPO, 'tools/analysis_tools/feature_similarity.py')
    spec = importlib.util.spec_from_file_location('feature_similarity', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('debiased', [False, True])
def test_cka_of_itself_is_one(debiased):
    x = randn(10, 6)
    assert linear_cka(x, x, debiased=debiased) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize('debiased', [False, True])
def test_invariant_to_orthogonal_maps_and_isotropic_scaling(debiased):
    x, y = randn(12, 5, seed=0), randn(12, 3, seed=1)
    q, _ = torch.linalg.qr(randn(5, 5, seed=2))
    assert torch.allclose(q.T @ q, torch.eye(5, dtype=q.dtype))
    moved = 3.7 * x @ q
    itself = linear_cka(x, moved, debiased=debiased)
    assert itself == pytest.approx(1, abs=1e-6)
    expected = linear_cka(x, y, debiased=debiased)
    assert linear_cka(
        moved, y, debiased=debiased) == pytest.approx(
            expected, abs=1e-9)
    assert linear_cka(x, y + 5.) == pytest.approx(linear_cka(x, y), abs=1e-9)


def test_independent_features_score_low_and_below_a_linear_map():
    x, y = randn(200, 8, seed=0), randn(200, 8, seed=1)
    mapped = x @ randn(8, 8, seed=2)
    independent = linear_cka(x, y)
    assert 0 <= independent < 0.1
    assert linear_cka(x, mapped) > 0.5 > independent


def test_debiased_removes_the_bias_of_few_samples():
    # 20 samples of 2000 dimensions: the biased CKA of unrelated features
    # is near 1, the debiased one near 0.
    x, y = randn(20, 2000, seed=0), randn(20, 2000, seed=1)
    assert linear_cka(x, y) > 0.9
    assert abs(linear_cka(x, y, debiased=True)) < 0.1


def test_hand_computed_4x2_example():
    x = torch.tensor([[1., 0.], [0., 1.], [1., 1.], [0., 0.]])
    y = torch.tensor([[1., 2.], [0., 1.], [2., 0.], [1., 1.]])
    # Centred: Xc^T Xc = I, Yc^T Xc = diag(1, -1), Yc^T Yc = [[2, -1],
    # [-1, 2]], so CKA = 2 / (sqrt(2) * sqrt(10)) = 1 / sqrt(5).
    assert linear_cka(x, y) == pytest.approx(1 / math.sqrt(5), abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), abs=1e-12)


def test_feature_maps_are_flattened_or_pooled():
    x, y = randn(6, 4, 3, 3, seed=0), randn(6, 4, 3, 3, seed=1)
    assert linear_cka(x, y) == pytest.approx(
        hsic_cka(x.reshape(6, -1), y.reshape(6, -1)), abs=1e-12)
    pooled = hsic_cka(x.mean((2, 3)), y.mean((2, 3)))
    assert linear_cka(x, y, pool=True) == pytest.approx(pooled, abs=1e-12)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='one row per input'):
        linear_cka(randn(4, 2), randn(5, 2))
    with pytest.raises(ValueError, match='at least 4'):
        linear_cka(randn(3, 2), randn(3, 2), debiased=True)


@pytest.fixture(scope='module')
def tiny_tree_model():
    return make_mtl_model(('a', 'b', 'seg'), stage_groups=TREE)


def probe(num=4, size=32):
    return randn(num, 3, size, size, seed=3).float()


def test_stage_features_of_a_task_path(tiny_tree_model):
    backbone = tiny_tree_model.backbone
    backbone.train()
    x = probe()
    feats = stage_features(backbone, x, 'a')
    assert [tuple(f.shape) for f in feats] == [(4, 32, 8, 8), (4, 64, 4, 4),
                                               (4, 160, 2, 2), (4, 256, 1, 1)]
    assert backbone.training  # back in its mode
    backbone.eval()
    with torch.no_grad():
        assert torch.equal(feats[3], backbone(x, 'a')[-1])
    assert [f.shape for f in stage_features(tiny_tree_model, x, 'a')] == \
        [f.shape for f in feats]
    with pytest.raises(ValueError, match='needs the task'):
        stage_features(backbone, x)


def test_branch_cka_is_one_on_shared_and_equal_copies(tiny_tree_model):
    result = branch_cka(tiny_tree_model, probe())
    assert result['tasks'] == ['a', 'b', 'seg']
    assert result['num_images'] == 4
    shared = [[p['shared'] for p in stage['pairs']]
              for stage in result['stages']]
    # pairs (a, b), (a, seg), (b, seg)
    assert shared == [[True] * 3, [True] * 3, [True, False, False],
                      [False] * 3]
    assert result['stages'][2]['copies'] == dict(a='a_b', b='a_b', seg='seg')
    for stage in result['stages']:
        for pair in stage['pairs']:
            if pair['shared']:
                assert pair['cka'] == 1.0
            else:  # copies start equal: the same features
                assert pair['cka'] == pytest.approx(1, abs=1e-6)
    assert result['stages'][3]['matrix'][0][0] == 1.0


def test_branch_cka_below_one_once_copies_differ():
    model = make_mtl_model(('a', 'b', 'seg'), stage_groups=TREE)
    perturb(model.backbone.stages[2]['seg'], seed=1)
    perturb(model.backbone.stages[3]['b'], seed=2)
    result = branch_cka(model, probe())
    cka = [{
        tuple(p['tasks']): p['cka']
        for p in stage['pairs']
    } for stage in result['stages']]
    assert all(v == 1.0 for stage in cka[:2] for v in stage.values())
    assert cka[2][('a', 'b')] == 1.0
    assert cka[2][('a', 'seg')] < 0.999
    assert cka[2][('b', 'seg')] < 0.999
    assert all(v < 0.999 for v in cka[3].values())
    matrix = result['stages'][3]['matrix']
    assert matrix[0][1] == matrix[1][0] == cka[3][('a', 'b')]
    table = format_branch_cka(result)
    assert 'copy a_b (a, b); copy seg (seg)' in table
    assert f"{cka[3][('a', 'b')]:.4f}" in table

    # the same stage through two models: CKA 1; through others: below
    same = cross_model_cka(model, 'a', model.backbone, 'a', probe())
    assert same == pytest.approx([1.] * 4, abs=1e-6)
    across = cross_model_cka(model, 'seg', model, 'b', probe())
    assert across[:2] == pytest.approx([1.] * 2, abs=1e-6)
    assert max(across[2:]) < 0.999


def test_probe_from_images_dir(tmp_path):
    tool = load_tool()
    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 2] = 255  # BGR
    for i in range(3):
        mmcv.imwrite(red, str(tmp_path / f'{i}.png'))
    norm = dict(mean=[100., 110., 120.], std=[10., 20., 30.], to_rgb=True)
    images = tool.probe_batch(5, 16, 0, norm, str(tmp_path))
    assert images.shape == (3, 3, 16, 16)
    assert torch.allclose(images[:, 0], torch.tensor((255. - 100) / 10))
    assert torch.allclose(images[:, 2], torch.tensor(-120. / 30))


def test_tool_end_to_end(tmp_path, capsys):
    tool = load_tool()
    mtl = build_model_from_config(MTL_DEMO)
    perturb(mtl.backbone.stages[3]['det'], seed=0)
    mtl_ckpt = str(tmp_path / 'mtl.pth')
    torch.save({'state_dict': mtl.state_dict()}, mtl_ckpt)
    # An STL classifier with the MTL cls branch as its backbone
    stl = build_model_from_config(STL_CLS_DEMO)
    backbone = mtl.backbone.shared_to_plain(mtl.backbone.state_dict(), 'cls')
    stl.backbone.load_state_dict(backbone)
    stl_ckpt = str(tmp_path / 'stl.pth')
    torch.save({'state_dict': stl.state_dict()}, stl_ckpt)

    out = tmp_path / 'sub' / 'cka.json'
    returned = tool.main([
        MTL_DEMO, mtl_ckpt, '--stl', f'cls={STL_CLS_DEMO}:{stl_ckpt}',
        '--images', '4', '--size', '64', '--out',
        str(out)
    ])
    with open(out) as f:
        result = json.load(f)
    assert result == json.loads(json.dumps(returned))
    assert result['probe']['kind'] == 'synthetic'
    assert result['probe']['num_images'] == 4
    assert result['probe']['normalisation']['source'] == \
        'cls data_preprocessor'
    branches = result['branches']
    assert branches['tasks'] == ['cls', 'det', 'seg']
    pairs = [{
        '-'.join(p['tasks']): (p['shared'], p['cka'])
        for p in stage['pairs']
    } for stage in branches['stages']]
    assert pairs[0] == pairs[1] == {
        'cls-det': (True, 1.0),
        'cls-seg': (True, 1.0),
        'det-seg': (True, 1.0)
    }
    assert not any(shared for stage in pairs[2:]
                   for shared, _ in stage.values())
    assert all(v == pytest.approx(1, abs=1e-6) for _, v in pairs[2].values())
    assert pairs[3]['cls-seg'][1] == pytest.approx(1, abs=1e-6)
    assert pairs[3]['cls-det'][1] < 0.999
    assert pairs[3]['det-seg'][1] < 0.999
    assert result['stl']['cls']['cka'] == pytest.approx([1.] * 4, abs=1e-6)
    printed = capsys.readouterr().out
    assert 'Probe: 4 synthetic images of 64x64' in printed
    assert 'STL backbone vs MTL branch' in printed

    with pytest.raises(ValueError, match='does not have'):
        tool.main([
            MTL_DEMO, mtl_ckpt, '--stl', f'mask={STL_CLS_DEMO}:{stl_ckpt}',
            '--images', '2', '--size', '32'
        ])
