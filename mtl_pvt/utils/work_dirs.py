"""The sessions of a work dir, as MMEngine's Runner writes them.

Each Runner session (``tools/train.py``, ``tools/test.py``, a resumed run)
makes a ``<timestamp>`` folder (``YYYYmmdd_HHMMSS``) in the work dir for its
log, ``vis_data/`` and test results. Read by the offline report
(:mod:`mtl_pvt.report`) and the task affinity analysis
(:mod:`mtl_pvt.analysis.affinity`); this module imports nothing heavy.
"""
import os
import os.path as osp
import re
from typing import List

TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


def sessions(work_dir: str) -> List[str]:
    """The ``<timestamp>`` session folders of ``work_dir``, oldest first."""
    return sorted(
        name for name in os.listdir(work_dir)
        if TIMESTAMP.match(name) and osp.isdir(osp.join(work_dir, name)))
