"""Linear CKA between the stage features of task branches and models.

Centred kernel alignment with a linear kernel (Kornblith et al., "Similarity
of Neural Network Representations Revisited", ICML 2019) compares two
representations ``X`` (n x p) and ``Y`` (n x q) of the same ``n`` inputs::

    X, Y centred per feature (column)
    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F * ||Y^T Y||_F)
              = <K, L>_F / (||K||_F * ||L||_F),   K = X X^T, L = Y Y^T

It lies in [0, 1], is 1 for ``Y = X Q s`` (``Q`` orthogonal, ``s != 0``)
and needs no ``p == q``. It is computed here in the second (Gram, n x n)
form, in float64: feature maps have far more dimensions than the probe has
images.

The stage features of a shared backbone's task path
(:class:`~mtl_pvt.models.SharedBackbone`: PVT v2, ResNet, Swin), or of the
plain library backbone of a single-task model, are the NCHW maps of its
stages as the task's neck would read them, in eval mode on a fixed probe
batch.
:func:`branch_cka` compares the branches of one multi-task model stage by
stage, :func:`cross_model_cka` one path of a model with one of another
(an STL backbone against the MTL branch of its task).

Feature maps are flattened per sample by default (a row of C*H*W values),
not average-pooled: the detection and segmentation heads read the maps
location by location, so two branches that compute the same channels at
different places do differ for them; pooling (``pool=True``) keeps only
the per-image channel means, what a classifier's head reads.

With ``n`` much smaller than the feature dimension, the (biased) linear CKA
of Kornblith et al. is far from 0 even for unrelated features (two
independent Gaussian matrices approach 1 as the dimension grows), so
values are to be compared with each other on the same probe rather than
read as absolute; ``debiased=True`` uses the unbiased HSIC estimator of
Song et al. (JMLR 2012) instead, near 0 for unrelated features.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mtl_pvt.models.backbones import SharedBackbone


def as_matrix(features: torch.Tensor, pool: bool = False) -> torch.Tensor:
    """Features of ``n`` samples as an ``(n, d)`` float64 matrix.

    Args:
        features (Tensor): ``(n, d)``, or ``(n, C, H, W)`` maps (any
            ``(n, ...)`` shape is flattened per sample).
        pool (bool): Whether to average ``(n, C, H, W)`` maps over H and W
            first (``d = C``) instead of flattening them (``d = C*H*W``).
            Defaults to False.

    Returns:
        Tensor: ``(n, d)``, float64, on the CPU.
    """
    if features.dim() < 2:
        raise ValueError('features must be (n, d) or (n, C, H, W), but got '
                         f'shape {tuple(features.shape)}')
    features = features.detach()
    if pool and features.dim() == 4:
        features = features.mean(dim=(2, 3))
    return features.reshape(features.shape[0], -1).double().cpu()


def _centred_gram(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(dim=0, keepdim=True)
    return x @ x.T


def _unbiased_hsic(k: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Song et al.'s unbiased HSIC estimator, up to the factor 1/(n(n-3))
    (which cancels in CKA)::

        tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2))
                  - 2/(n-2) 1^T K~ L~ 1,     K~ = K with a zero diagonal

    of the Gram matrices ``k`` (K) and ``m`` (L).
    """
    n = k.shape[0]
    k = k - torch.diag(torch.diag(k))
    m = m - torch.diag(torch.diag(m))
    trace = (k * m).sum()
    sums = k.sum() * m.sum() / ((n - 1) * (n - 2))
    cross = (k.sum(0) * m.sum(0)).sum() * 2. / (n - 2)
    return trace + sums - cross


def linear_cka(x: torch.Tensor,
               y: torch.Tensor,
               pool: bool = False,
               debiased: bool = False) -> float:
    """Linear CKA of two representations of the same ``n`` inputs.

    Args:
        x (Tensor): ``(n, p)`` features, or ``(n, C, H, W)`` maps.
        y (Tensor): ``(n, q)`` features, or ``(n, C', H', W')`` maps.
        pool (bool): Average maps over H and W instead of flattening them
            per sample, see :func:`as_matrix`. Defaults to False.
        debiased (bool): Use the unbiased HSIC estimator (needs ``n >= 4``)
            instead of Kornblith et al.'s biased one. Defaults to False.

    Returns:
        float: The CKA, in [0, 1] (debiased: may leave it slightly); NaN
        if either representation is constant over the ``n`` inputs.
    """
    x, y = as_matrix(x, pool), as_matrix(y, pool)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f'x and y must have one row per input, but x has '
                         f'{n} and y {y.shape[0]}')
    if n < (4 if debiased else 2):
        raise ValueError(f'CKA needs at least {4 if debiased else 2} '
                         f'inputs{" (debiased)" if debiased else ""}, but '
                         f'got {n}')
    k, m = _centred_gram(x), _centred_gram(y)
    if debiased:
        km, kk, mm = (_unbiased_hsic(k, m), _unbiased_hsic(k, k),
                      _unbiased_hsic(m, m))
    else:
        km, kk, mm = (k * m).sum(), (k * k).sum(), (m * m).sum()
    return float(km / (kk * mm).sqrt())


def _is_backbone(module: Optional[nn.Module]) -> bool:
    return isinstance(module, SharedBackbone) or (
        module is not None
        and SharedBackbone.implementation_for(module) is not None)


def backbone_of(module: nn.Module) -> nn.Module:
    """The backbone of ``module``: itself if it is a shared backbone or the
    plain library backbone of one, else its ``.backbone`` (a
    ``MultiTaskModel`` or an STL model)."""
    if _is_backbone(module):
        return module
    backbone = getattr(module, 'backbone', None)
    if _is_backbone(backbone):
        return backbone
    raise TypeError('expected a SharedBackbone, a library backbone that one '
                    'shares (mmdet PyramidVisionTransformerV2, ResNet, '
                    'SwinTransformer) or a model with one as .backbone, but '
                    f'got {type(module).__name__}')


class _EvalMode:
    """Eval mode (no stochastic depth, no dropout) within the context."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __enter__(self):
        self.was_training = self.module.training
        self.module.eval()

    def __exit__(self, *exc):
        self.module.train(self.was_training)


def _input_on(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    param = next(backbone.parameters(), None)
    return x if param is None else x.to(param.device, param.dtype)


@torch.no_grad()
def path_features(backbone: SharedBackbone, x: torch.Tensor,
                  tasks: Sequence[str]) -> Dict[str, List[torch.Tensor]]:
    """The stage features of each of ``tasks``' paths, in eval mode.

    Each stage copy runs once: tasks that share a copy get the very same
    tensor for that stage.

    Args:
        backbone (SharedBackbone): The shared backbone.
        x (Tensor): ``(N, 3, H, W)`` normalised images.
        tasks (Sequence[str]): Task names.

    Returns:
        dict[str, list[Tensor]]: Task -> NCHW feature of each stage.
    """
    unknown = [t for t in tasks if t not in backbone.tasks]
    if unknown:
        raise KeyError(f'unknown task(s) {unknown} (tasks: '
                       f'{backbone.tasks})')
    x = _input_on(backbone, x)
    outputs: Dict[Tuple[int, str], torch.Tensor] = {}
    feats = {}
    with _EvalMode(backbone):
        for task in tasks:
            y, feats[task] = x, []
            for i, (key, stage) in enumerate(backbone.task_stages(task)):
                if (i, key) not in outputs:
                    out = backbone.run_stage(i, stage, y)
                    outputs[i,
                            key] = (out, backbone.stage_feature(i, stage, out))
                y, feat = outputs[i, key]
                feats[task].append(feat)
    return feats


@torch.no_grad()
def stage_features(backbone: nn.Module,
                   x: torch.Tensor,
                   task: Optional[str] = None) -> List[torch.Tensor]:
    """The features of all stages of one backbone path, in eval mode.

    Args:
        backbone (nn.Module): A ``SharedBackbone``, the plain library
            backbone of one (all stages, whatever its ``out_indices``; a
            stage whose norm it lacks gives its output before the norm), or
            a model with one of them as ``.backbone``.
        x (Tensor): ``(N, 3, H, W)`` normalised images.
        task (str, optional): The task whose path to run; needed for a
            ``SharedBackbone``, ignored by a plain backbone. Defaults to
            None.

    Returns:
        list[Tensor]: NCHW feature of each stage.
    """
    backbone = backbone_of(backbone)
    if isinstance(backbone, SharedBackbone):
        if task is None:
            raise ValueError(f'a {type(backbone).__name__} needs the task '
                             f'whose path to run (tasks: {backbone.tasks})')
        return path_features(backbone, x, [task])[task]
    impl = SharedBackbone.implementation_for(backbone)
    y, feats = _input_on(backbone, x), []
    with _EvalMode(backbone):
        # the library's forward, stage by stage, without out_indices
        for i, stage in enumerate(impl.plain_stages(backbone)):
            y = impl.run_stage(i, stage, y)
            feats.append(impl.stage_feature(i, stage, y))
    return feats


def branch_cka(model: nn.Module,
               images: torch.Tensor,
               pool: bool = False,
               debiased: bool = False) -> dict:
    """CKA between the task branches of a multi-task model, per stage.

    For stage ``s`` and each pair of tasks ``(i, j)``, the linear CKA of
    the stage-``s`` outputs of ``i``'s and ``j``'s paths on ``images``.
    A pair that runs on the same copy of stage ``s`` has the same features,
    so its CKA is 1 by construction: it is set to exactly 1.0 and marked
    ``shared``. Copies that start from equal weights give 1 too (up to
    rounding) until training makes them differ.

    Args:
        model (nn.Module): A ``MultiTaskModel`` or its ``SharedBackbone``.
        images (Tensor): ``(N, 3, H, W)`` normalised probe images.
        pool (bool): See :func:`linear_cka`. Defaults to False.
        debiased (bool): See :func:`linear_cka`. Defaults to False.

    Returns:
        dict: ``tasks``, ``num_images``, ``pool``, ``debiased`` and
        ``stages``: per stage, ``stage``, ``copies`` (task -> copy name),
        ``matrix`` (CKA, rows and columns in ``tasks`` order) and ``pairs``
        (each pair ``i < j``: ``tasks``, ``shared``, ``cka``).
    """
    backbone = backbone_of(model)
    if not isinstance(backbone, SharedBackbone):
        raise TypeError('branch_cka needs a MultiTaskModel or SharedBackbone, '
                        f'but got {type(backbone).__name__}')
    tasks = list(backbone.tasks)
    feats = path_features(backbone, images, tasks)
    copies = {
        task: [key for key, _ in backbone.task_stages(task)]
        for task in tasks
    }
    stages = []
    for s in range(backbone.num_stages):
        matrix = [[1.0] * len(tasks) for _ in tasks]
        pairs = []
        for i, a in enumerate(tasks):
            for j in range(i + 1, len(tasks)):
                b = tasks[j]
                shared = copies[a][s] == copies[b][s]
                cka = 1.0 if shared else linear_cka(
                    feats[a][s], feats[b][s], pool=pool, debiased=debiased)
                matrix[i][j] = matrix[j][i] = cka
                pairs.append(dict(tasks=[a, b], shared=shared, cka=cka))
        stages.append(
            dict(
                stage=s,
                copies=OrderedDict((t, copies[t][s]) for t in tasks),
                matrix=matrix,
                pairs=pairs))
    return dict(
        tasks=tasks,
        num_images=int(images.shape[0]),
        pool=pool,
        debiased=debiased,
        stages=stages)


def cross_model_cka(backbone_a: nn.Module,
                    task_a: Optional[str],
                    backbone_b: nn.Module,
                    task_b: Optional[str],
                    images: torch.Tensor,
                    pool: bool = False,
                    debiased: bool = False) -> List[float]:
    """CKA per stage between one path of a backbone and one of another.

    E.g. two STL backbones, or an STL backbone against the MTL branch of
    its task: ``cross_model_cka(stl_model, None, mtl_model, 'cls', x)``.

    Args:
        backbone_a (nn.Module): A ``SharedBackbone``, a plain library
            backbone or a model with one as ``.backbone``, see
            :func:`stage_features`.
        task_a (str, optional): Its task path (``SharedBackbone`` only).
        backbone_b (nn.Module): The other backbone.
        task_b (str, optional): Its task path (``SharedBackbone`` only).
        images (Tensor): ``(N, 3, H, W)`` normalised probe images.
        pool (bool): See :func:`linear_cka`. Defaults to False.
        debiased (bool): See :func:`linear_cka`. Defaults to False.

    Returns:
        list[float]: The CKA of each stage.
    """
    feats_a = stage_features(backbone_a, images, task_a)
    feats_b = stage_features(backbone_b, images, task_b)
    return [
        linear_cka(a, b, pool=pool, debiased=debiased)
        for a, b in zip(feats_a, feats_b)
    ]


def format_branch_cka(result: dict) -> str:
    """:func:`branch_cka`'s matrices as text tables, one per stage.

    Args:
        result (dict): The output of :func:`branch_cka`.

    Returns:
        str: Per stage, its copies and the task x task CKA matrix; ``=``
        marks pairs on the same stage copy (1 by construction).
    """
    tasks = result['tasks']
    width = max(7, *(len(t) for t in tasks))
    lines = []
    for stage in result['stages']:
        groups = OrderedDict()
        for task, key in stage['copies'].items():
            groups.setdefault(key, []).append(task)
        lines.append(f"stage {stage['stage']}: " +
                     '; '.join(f"copy {key} ({', '.join(ts)})"
                               for key, ts in groups.items()))
        lines.append(' ' * width + ''.join(t.rjust(width + 2) for t in tasks))
        for i, a in enumerate(tasks):
            cells = []
            for j, b in enumerate(tasks):
                shared = stage['copies'][a] == stage['copies'][b]
                cell = '=' if shared else f"{stage['matrix'][i][j]:.4f}"
                cells.append(cell.rjust(width + 2))
            lines.append(a.ljust(width) + ''.join(cells))
    lines.append('= : same stage copy, CKA 1 by construction')
    return '\n'.join(lines)
