"""Gradient aggregators: each checked on its defining property.

All matrices are small (T <= 4 tasks, P = 50 parameters), seeded and in
float64 unless a test is about dtypes, so that the exact solvers can be
held to tight tolerances.
"""
import functools
import itertools
import math

import pytest
import torch
from mmengine.registry import DefaultScope

from mtl_pvt.models.task_utils import (IMTLG, MGDA, AlignedMTL, BaseAggregator,
                                       CAGrad, Mean, NashMTL, PCGrad, Sum,
                                       UPGrad)
from mtl_pvt.registry import TASK_UTILS

P = 50
NAMES = [
    'Mean', 'Sum', 'PCGrad', 'CAGrad', 'MGDA', 'IMTLG', 'NashMTL',
    'AlignedMTL', 'UPGrad'
]
CLASSES = dict(
    Mean=Mean,
    Sum=Sum,
    PCGrad=PCGrad,
    CAGrad=CAGrad,
    MGDA=MGDA,
    IMTLG=IMTLG,
    NashMTL=NashMTL,
    AlignedMTL=AlignedMTL,
    UPGrad=UPGrad)
DETERMINISTIC = [n for n in NAMES if n != 'PCGrad']


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """The matrices are tiny: BLAS threads only add overhead, which is
    large on a busy machine (2.5x the run time)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def build(name, **kwargs):
    # the default scope may have been set by another test
    with DefaultScope.overwrite_default_scope('mtl_pvt'):
        return TASK_UTILS.build(dict(type=name, **kwargs))


def conflicting(num_tasks, seed=0, num_params=P):
    """Random gradients with strong pairwise conflicts (float64)."""
    gen = torch.Generator().manual_seed(seed)
    common = torch.randn(num_params, generator=gen, dtype=torch.float64)
    signs = torch.tensor([(-1.)**i for i in range(num_tasks)],
                         dtype=torch.float64)
    scales = 0.5 + torch.rand(num_tasks, generator=gen, dtype=torch.float64)
    noise = torch.randn(
        num_tasks, num_params, generator=gen, dtype=torch.float64)
    return scales[:, None] * (noise + 1.5 * signs[:, None] * common)


def unit(x):
    return x / x.norm()


@functools.lru_cache()
def simplex_grid(num_tasks, steps):
    """All points of the simplex with coordinates in multiples of 1/steps."""
    points = [
        c for c in itertools.product(range(steps + 1), repeat=num_tasks - 1)
        if sum(c) <= steps
    ]
    grid = torch.tensor(points, dtype=torch.float64) / steps
    return torch.cat([grid, 1. - grid.sum(1, keepdim=True)], 1)


# --------------------------------------------------------------- common


def test_registry():
    for name in NAMES:
        agg = build(name)
        assert type(agg) is CLASSES[name]
        assert isinstance(agg, BaseAggregator)
    assert isinstance(build('mtl_pvt.PCGrad', seed=3), PCGrad)
    assert build('CAGrad', c=0.2, rescale=2).rescale == 2
    with pytest.raises(KeyError):
        build('NoSuchAggregator')
    with pytest.raises(ValueError):
        build('PCGrad', reduction='max')


def test_mean_sum():
    G = conflicting(3)
    gram = G @ G.T
    assert torch.equal(
        build('Mean').combination(gram),
        torch.full((3, ), 1. / 3, dtype=torch.float64))
    assert torch.equal(
        build('Sum').combination(gram), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(build('Mean')(G), G.mean(0))
    torch.testing.assert_close(build('Sum')(G), G.sum(0))


@pytest.mark.parametrize('name', NAMES)
def test_single_task(name):
    g = conflicting(1)
    agg = build(name)
    assert torch.equal(agg(g), g[0])
    assert torch.equal(agg(g.float()), g[0].float())
    assert torch.equal(
        agg.combination(g @ g.T), torch.ones(1, dtype=torch.float64))


@pytest.mark.parametrize('name', NAMES)
def test_zero_gradients(name):
    for num_tasks in (2, 3, 4):
        G = conflicting(num_tasks, seed=num_tasks)
        G[1] = 0.
        for grads in (G, torch.zeros_like(G), G.float()):
            out = build(name)(grads)
            assert torch.isfinite(out).all(), (name, num_tasks)
            assert torch.isfinite(build(name).combination(
                grads @ grads.T)).all()


@pytest.mark.parametrize('name', NAMES)
def test_combination_contract(name):
    """``__call__`` is ``w @ G``; ``w`` from summed shard Grams is the same
    (the DDP-shard property); dtypes are kept."""
    for num_tasks in (2, 3, 4):
        G = conflicting(num_tasks, seed=10 + num_tasks)
        weights = build(name).combination(G @ G.T)
        assert weights.shape == (num_tasks, )
        assert weights.dtype == torch.float64
        torch.testing.assert_close(
            build(name)(G), weights @ G, rtol=1e-12, atol=1e-12)
        G1, G2 = G[:, :20], G[:, 20:]
        sharded = build(name).combination(G1 @ G1.T + G2 @ G2.T)
        torch.testing.assert_close(sharded, weights, rtol=1e-9, atol=1e-9)
        out32 = build(name)(G.float())
        assert out32.dtype == torch.float32
        assert build(name).combination((G @ G.T).float()).dtype == \
            torch.float32
        if name != 'AlignedMTL':  # its rank tolerance depends on the dtype
            torch.testing.assert_close(
                out32.double(), weights @ G, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name', DETERMINISTIC)
def test_permutation_invariance(name):
    agg = build(name)
    for num_tasks, seed in [(2, 0), (2, 1), (3, 0), (3, 1), (4, 0)]:
        G = conflicting(num_tasks, seed=seed)
        out = agg(G)
        perms = list(itertools.permutations(range(num_tasks)))
        if num_tasks == 4:  # 6 of the 24: enough, and fast
            perms = [(1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2), (3, 2, 1, 0),
                     (0, 2, 1, 3), (1, 0, 3, 2)]
        for perm in perms:
            torch.testing.assert_close(
                agg(G[list(perm)]),
                out,
                rtol=1e-6,
                atol=1e-6 * out.norm().item())


def test_non_finite_gram():
    G = conflicting(3)
    gram = G @ G.T
    gram[0, 1] = float('inf')
    agg = build('PCGrad')
    state = agg.state_dict()['generator_state'].clone()
    assert torch.isnan(agg.combination(gram)).all()
    assert torch.equal(agg.state_dict()['generator_state'], state)
    assert torch.isnan(build('UPGrad').combination(gram)).all()


# --------------------------------------------------------------- PCGrad


def pcgrad_reference(G, seed):
    """Gradient surgery on the vectors, with PCGrad's random orders."""
    gen = torch.Generator().manual_seed(seed)
    num_tasks = G.shape[0]
    projected = []
    for i in range(num_tasks):
        others = [j for j in range(num_tasks) if j != i]
        g = G[i].clone()
        for k in torch.randperm(num_tasks - 1, generator=gen).tolist():
            j = others[k]
            dot = g @ G[j]
            if dot < 0:
                g = g - dot / (G[j] @ G[j]) * G[j]
        projected.append(g)
    return torch.stack(projected)


def test_pcgrad_two_tasks():
    G = conflicting(2)
    assert G[0] @ G[1] < 0
    coef = build('PCGrad').projection_matrix(G @ G.T)
    g1, g2 = coef @ G
    # each modified gradient is orthogonal to the other original one, and
    # the modified pair no longer conflicts
    assert abs(g1 @ G[1]) <= 1e-10 * G[1].norm() * g1.norm()
    assert abs(g2 @ G[0]) <= 1e-10 * G[0].norm() * g2.norm()
    assert g1 @ g2 >= 0
    torch.testing.assert_close(build('PCGrad')(G), g1 + g2)
    torch.testing.assert_close(
        build('PCGrad', reduction='mean')(G), (g1 + g2) / 2)


def test_pcgrad_no_conflict():
    G = conflicting(3).abs()  # all inner products positive
    agg = build('PCGrad')
    assert torch.equal(
        agg.combination(G @ G.T), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(agg(G), G.sum(0))


def test_pcgrad_matches_vector_surgery():
    for num_tasks, seed in itertools.product((3, 4), (0, 5)):
        G = conflicting(num_tasks, seed=seed)
        coef = build('PCGrad', seed=seed).projection_matrix(G @ G.T)
        torch.testing.assert_close(
            coef @ G, pcgrad_reference(G, seed), rtol=1e-10, atol=1e-10)


def test_pcgrad_seed_and_state():
    # g0 conflicts with g1 and g2, which are not orthogonal: the order of
    # the projections of g0 matters
    G = torch.zeros(3, P, dtype=torch.float64)
    G[0, :3] = torch.tensor([1., 0., 0.])
    G[1, :3] = torch.tensor([-1., 1., 0.])
    G[2, :3] = torch.tensor([-1., 0.2, 1.])
    G[:, 3:] = 0.01 * conflicting(3, num_params=P - 3)
    results = [build('PCGrad', seed=s)(G) for s in range(16)]
    assert len({tuple(r.tolist()) for r in results}) > 1
    for s in range(16):
        assert torch.equal(build('PCGrad', seed=s)(G), results[s])

    agg = build('PCGrad', seed=7)
    agg(G)
    state = agg.state_dict()
    expected = [agg(G) for _ in range(5)]
    other = build('PCGrad', seed=123)
    other.load_state_dict(state)
    assert [torch.equal(other(G), e) for e in expected] == [True] * 5
    # and the same stream as a fresh PCGrad of the same seed
    fresh = build('PCGrad', seed=7)
    assert [torch.equal(fresh(G), r)
            for r in [results[7]] + expected] == [True] * 6


# --------------------------------------------------------------- MGDA


def assert_min_norm_kkt(gram, w, tol=1e-9):
    """KKT of min w^T Gram w on the simplex: (Gram w)_j >= w^T Gram w for
    every j, with equality where w_j > 0."""
    grad = gram @ w
    value = w @ grad
    scale = gram.diagonal().max()
    assert w.min() >= 0 and abs(w.sum() - 1) <= 1e-12
    assert (grad >= value - tol * scale).all()
    assert ((grad - value).abs()[w > 1e-9] <= tol * scale).all()


def test_mgda_two_tasks():
    G = conflicting(2)
    g1, g2 = G
    w = build('MGDA').combination(G @ G.T)
    # closed form of the min-norm point of the segment [g1, g2]
    w1 = ((g2 - g1) @ g2 / (g1 - g2).norm()**2).clamp(0, 1)
    torch.testing.assert_close(w, torch.stack([w1, 1 - w1]))
    # brute force on a grid of step 1e-5 of the segment: the exact optimum
    # is at least as good as every grid point and within one grid step
    grid = simplex_grid(2, 100000)
    norms = (grid @ G).norm(dim=1)
    assert (w @ G).norm() <= norms.min() + 1e-12
    assert (grid[norms.argmin()] - w).abs().max() <= 1e-5
    assert_min_norm_kkt(G @ G.T, w)


@pytest.mark.parametrize('num_tasks', [3, 4])
def test_mgda_min_norm(num_tasks):
    for seed in range(3):
        G = conflicting(num_tasks, seed=seed)
        gram = G @ G.T
        w = build('MGDA').combination(gram)
        assert_min_norm_kkt(gram, w)
        # brute force: no point of a grid of step 1/120 of the simplex is
        # better than the exact solution; the grid point nearest to the
        # optimum is within 1/120 per coordinate, so the grid minimum is
        # above the optimum by at most |G^T delta|^2 + 2 |g_w| |G^T delta|
        # with |delta|_1 <= T/120, well below 5e-2 * max_i |g_i|^2 here
        grid = simplex_grid(num_tasks, 120 if num_tasks == 3 else 40)
        values = ((grid @ G)**2).sum(1)
        optimum = w @ gram @ w
        assert optimum <= values.min() + 1e-12
        assert values.min() - optimum <= 5e-2 * gram.diagonal().max()


def test_mgda_degenerate_and_l2():
    G = conflicting(3)
    G[2] = -(G[0] + G[1]) / 2  # 0 is in the convex hull
    w = build('MGDA').combination(G @ G.T)
    assert (w @ G).norm() <= 1e-10 * G.norm()
    # l2: the min-norm weights of the unit gradients, applied to the raw
    # gradients
    G = conflicting(3, seed=4)
    units = G / G.norm(dim=1, keepdim=True)
    expected = build('MGDA').combination(units @ units.T)
    torch.testing.assert_close(
        build('MGDA', normalization='l2').combination(G @ G.T), expected)


# --------------------------------------------------------------- CAGrad


def cagrad_objective(gram, w, c):
    k = c * gram.mean().sqrt()
    return w @ gram.mean(1) + k * (w @ gram @ w).clamp_min(0).sqrt()


def test_cagrad_c0_is_mean():
    for num_tasks in (2, 3, 4):
        G = conflicting(num_tasks)
        torch.testing.assert_close(
            build('CAGrad', c=0.)(G), G.mean(0), rtol=1e-6, atol=1e-6)
        assert torch.equal(
            build('CAGrad', c=0.).combination(G @ G.T),
            torch.full((num_tasks, ), 1. / num_tasks, dtype=torch.float64))


@pytest.mark.parametrize('num_tasks', [2, 3, 4])
def test_cagrad_optimality(num_tasks):
    for seed, c in itertools.product(range(2), (0.2, 0.5, 0.9)):
        G = conflicting(num_tasks, seed=seed)
        gram = G @ G.T
        agg = build('CAGrad', c=c, rescale=0)
        w, gw_norm = agg.dual_weights(gram / gram.diagonal().max())
        k = c * gram.mean().sqrt()
        # the dual objective is not beaten by any grid point
        steps = {2: 2000, 3: 100, 4: 30}[num_tasks]
        grid = simplex_grid(num_tasks, steps)
        values = grid @ gram.mean(1) + k * (
            (grid @ gram) * grid).sum(1).clamp_min(0).sqrt()
        assert cagrad_objective(gram, w, c) <= values.min() + 1e-10
        # KKT of the convex dual: the gradient is >= its value on the
        # support, with equality there
        grad = gram.mean(1) + k * (gram @ w) / (w @ gram @ w).sqrt()
        nu = w @ grad
        scale = gram.diagonal().max()
        assert (grad >= nu - 1e-8 * scale).all()
        assert ((grad - nu).abs()[w > 1e-9] <= 1e-8 * scale).all()
        # primal: d maximises min_i g_i . d on the ball |d - g0| <= c |g0|
        d = agg(G)
        g0 = G.mean(0)
        assert (d - g0).norm() <= c * g0.norm() * (1 + 1e-9)
        gen = torch.Generator().manual_seed(seed)
        dirs = torch.randn(2000, P, generator=gen, dtype=torch.float64)
        ball = g0 + c * g0.norm() * dirs / dirs.norm(dim=1, keepdim=True)
        ball = torch.cat([ball, g0[None]])
        assert (G @ d).min() >= (ball @ G.T).min(1).values.max() - 1e-9


def test_cagrad_rescale():
    G = conflicting(3)
    plain = build('CAGrad', c=0.4, rescale=0)(G)
    torch.testing.assert_close(
        build('CAGrad', c=0.4, rescale=1)(G), plain / (1 + 0.4**2))
    torch.testing.assert_close(
        build('CAGrad', c=0.4, rescale=2)(G), plain / 1.4)
    # the default is c=0.5, rescale=1
    torch.testing.assert_close(
        build('CAGrad')(G),
        build('CAGrad', c=0.5, rescale=0)(G) / 1.25)


def test_cagrad_fully_conflicting():
    g = conflicting(1)[0]
    G = torch.stack([g, -g])
    assert torch.equal(
        build('CAGrad').combination(G @ G.T),
        torch.full((2, ), 0.5 / 1.25, dtype=torch.float64))


# --------------------------------------------------------------- UPGrad


@pytest.mark.parametrize('num_tasks', [2, 3, 4])
def test_upgrad_non_conflicting(num_tasks):
    for seed in range(4):
        G = conflicting(num_tasks, seed=seed)
        gram = G @ G.T
        agg = build('UPGrad')
        out = agg(G)
        norms = G.norm(dim=1)
        assert (G @ out >= -1e-9 * norms * norms.max()).all()
        # each projection: p_i = g_i + G^T lam with lam >= 0, G p_i >= 0
        # and lam_j (G p_i)_j = 0: the KKT conditions of the projection
        # of g_i on the dual cone {x : G x >= 0}
        coef = agg.projection_weights(gram)
        lam = coef - torch.eye(num_tasks, dtype=torch.float64)
        inner = coef @ gram  # (G p_i)_j
        scale = gram.diagonal().max()
        assert (lam >= 0).all()
        assert (inner >= -1e-9 * scale).all()
        assert ((lam * inner).abs() <= 1e-9 * scale).all()
        torch.testing.assert_close(out, coef.mean(0) @ G)


def test_upgrad_rank_deficient_and_pref():
    # 4 strongly conflicting gradients in 3 and 4 dimensions (the dual
    # cone may be {0}: the tolerance is relative to the input's scale)
    for num_params in (3, 4):
        G = conflicting(4, seed=3, num_params=num_params)
        out = build('UPGrad')(G)
        norms = G.norm(dim=1)
        assert (G @ out >= -1e-9 * norms * norms.max()).all()
    G = conflicting(3).abs()  # no conflict: the projections are identities
    torch.testing.assert_close(build('UPGrad')(G), G.mean(0))
    torch.testing.assert_close(
        build('UPGrad', pref_vector=[1., 2., 0.5])(G),
        G[0] + 2 * G[1] + 0.5 * G[2])


# --------------------------------------------------------------- NashMTL


@pytest.mark.parametrize('num_tasks', [2, 3, 4])
def test_nash_bargaining_condition(num_tasks):
    for seed in range(3):
        G = conflicting(num_tasks, seed=seed)
        gram = G @ G.T
        a = build('NashMTL').combination(gram)
        assert (a > 0).all()
        torch.testing.assert_close(gram @ a, 1 / a, rtol=1e-6, atol=0)
        # scale: Gram -> s^2 Gram gives a -> a / s
        torch.testing.assert_close(
            build('NashMTL').combination(9 * gram), a / 3, rtol=1e-9, atol=0)


def test_nash_degenerate():
    g, h = conflicting(2, seed=1)
    h = h - (h @ g) / (g @ g) * g  # h orthogonal to g
    # g and -g cancel: no bargaining solution exists
    G = torch.stack([g, -g, h])
    a = build('NashMTL').combination(G @ G.T)
    out = a @ G
    assert torch.isfinite(a).all() and (a > 0).all()
    # the cancelling pair contributes (almost) nothing, h gets its own
    # bargaining weight 1 / |h| (up to the 1e-8 regularisation)
    torch.testing.assert_close(out, h / h.norm(), rtol=1e-6, atol=1e-6)
    # a zero gradient gets weight 0, the others bargain among themselves
    G = conflicting(3, seed=2)
    G[1] = 0.
    a = build('NashMTL').combination(G @ G.T)
    assert a[1] == 0
    sub = build('NashMTL').combination(G[[0, 2]] @ G[[0, 2]].T)
    torch.testing.assert_close(a[[0, 2]], sub)


def test_nash_options():
    G = conflicting(3)
    gram = G @ G.T
    agg = build('NashMTL', max_norm=0.1)
    assert (agg(G).norm() - 0.1).abs() <= 1e-9
    agg = build('NashMTL', update_weights_every=2)
    assert not agg.stateless and build('NashMTL').stateless
    assert build('NashMTL').state_dict() == {}
    w1 = agg.combination(gram)
    G2 = conflicting(3, seed=1)
    # reused on the second call, recomputed on the third
    assert torch.equal(agg.combination(G2 @ G2.T), w1)
    state = agg.state_dict()
    w3 = agg.combination(G2 @ G2.T)
    torch.testing.assert_close(w3, build('NashMTL').combination(G2 @ G2.T))
    other = build('NashMTL', update_weights_every=2)
    other.load_state_dict(state)
    assert torch.equal(other.combination(G2 @ G2.T), w3)


# --------------------------------------------------------------- IMTLG


def imtlg_closed_form(G):
    """The paper's formula, on the vectors."""
    units = G / G.norm(dim=1, keepdim=True)
    D = G[:1] - G[1:]
    U = units[:1] - units[1:]
    alpha = G[0] @ U.T @ torch.linalg.inv(D @ U.T)
    return torch.cat([1 - alpha.sum(0, keepdim=True), alpha])


@pytest.mark.parametrize('num_tasks', [2, 3, 4])
def test_imtlg_equal_projections(num_tasks):
    for seed in range(3):
        G = conflicting(num_tasks, seed=seed)
        alpha = build('IMTLG').combination(G @ G.T)
        out = alpha @ G
        projections = G @ out / G.norm(dim=1)
        torch.testing.assert_close(
            projections,
            projections.mean().expand(num_tasks),
            rtol=1e-9,
            atol=1e-9 * out.norm().item())
        assert abs(alpha.sum() - 1) <= 1e-10
        torch.testing.assert_close(alpha, imtlg_closed_form(G))


def test_imtlg_zero_and_identical():
    G = conflicting(3)
    G[2] = 0.
    alpha = build('IMTLG').combination(G @ G.T)
    assert alpha[2] == 0
    torch.testing.assert_close(alpha[:2],
                               build('IMTLG').combination(G[:2] @ G[:2].T))
    # two identical tasks share their weight
    G = conflicting(3, seed=1)
    G[2] = G[1]
    alpha = build('IMTLG').combination(G @ G.T)
    torch.testing.assert_close(alpha[1], alpha[2])
    out = alpha @ G
    projections = G @ out / G.norm(dim=1)
    torch.testing.assert_close(projections, projections.mean().expand(3))


# --------------------------------------------------------------- AlignedMTL


@pytest.mark.parametrize('num_tasks', [2, 3, 4])
def test_aligned_mtl_singular_values(num_tasks):
    for seed in range(3):
        G = conflicting(num_tasks, seed=seed)
        agg = build('AlignedMTL')
        B = agg.alignment_matrix(G @ G.T)
        sigma = torch.linalg.svdvals(G)
        aligned = torch.linalg.svdvals(B @ G)
        torch.testing.assert_close(
            aligned, sigma.min().expand(num_tasks), rtol=1e-5, atol=0)
        torch.testing.assert_close(agg(G), (B @ G).sum(0))
        torch.testing.assert_close(
            build('AlignedMTL', reduction='mean')(G), (B @ G).mean(0))
        weights = list(range(1, num_tasks + 1))
        torch.testing.assert_close(
            build('AlignedMTL', task_weights=weights)(G),
            torch.tensor(weights, dtype=torch.float64) @ B @ G)


def test_aligned_mtl_rank_deficient():
    G = conflicting(4, seed=2)
    G[3] = G[0] - 0.5 * G[1] + 2 * G[2]  # rank 3
    B = build('AlignedMTL').alignment_matrix(G @ G.T)
    sigma = torch.linalg.svdvals(G)
    assert sigma[3] <= 1e-12 * sigma[0]
    aligned = torch.linalg.svdvals(B @ G)
    torch.testing.assert_close(
        aligned[:3], sigma[2].expand(3), rtol=1e-5, atol=0)
    assert aligned[3] <= 1e-9 * sigma[0]
    # float32 gradients: the tolerance follows their precision
    G32 = G.float()
    B32 = build('AlignedMTL').alignment_matrix(G32 @ G32.T)
    aligned = torch.linalg.svdvals(B32 @ G)
    assert aligned[3] <= 1e-5 * sigma[0]
    assert math.isclose(aligned[0], sigma[2], rel_tol=1e-3)
