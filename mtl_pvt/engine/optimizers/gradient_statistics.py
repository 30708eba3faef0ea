"""What the per-task gradients look like: their norms and pairwise
cosines on each shared stage copy (logged every ``stats_interval``
updates), and the norms on the last shared copy that gradient-norm
weightings (GradNorm) learn from."""
from typing import Dict, List

import torch

from .task_rows import TaskRows


def gradient_statistics(rows: TaskRows,
                        present: List[str]) -> Dict[str, float]:
    """Per shared copy: ``grad_norm.<task>.<copy>`` and
    ``grad_cos.<a>-<b>.<copy>`` of the ``present`` tasks."""
    stats = {}
    for copy in rows.layout.shared_copies:
        unit, copy_rows = rows.of_copy(copy.name)
        tasks = [t for t in unit.tasks if t in present]
        norms = {
            t: torch.linalg.vector_norm(copy_rows[unit.tasks.index(t)])
            for t in tasks
        }
        for t in tasks:
            stats[f'grad_norm.{t}.{copy.name}'] = float(norms[t])
        for i, a in enumerate(tasks):
            for b in tasks[i + 1:]:
                dot = copy_rows[unit.tasks.index(a)] @ \
                    copy_rows[unit.tasks.index(b)]
                cos = dot / (norms[a] * norms[b]).clamp_min(1e-12)
                stats[f'grad_cos.{a}-{b}.{copy.name}'] = float(cos)
    return stats


def last_copy_norms(rows: TaskRows,
                    present: List[str]) -> Dict[str, torch.Tensor]:
    """Each ``present`` task's gradient norm on the last shared copy."""
    unit, copy_rows = rows.of_copy(rows.layout.last_shared_copy().name)
    return {
        t: torch.linalg.vector_norm(copy_rows[unit.tasks.index(t)])
        for t in unit.tasks if t in present
    }
