"""The runs of a study: names, order, folders, configs and state.

Each run is a (run name, seed) pair in ``<work_dir>/<run>/seed_<seed>/``:
the arms by name (kind ``'mtl'``), ``stl_<task>`` for the matched
single-task baselines (``'stl'``) and ``ref_<task>`` for the reference
baselines (``'ref'``). Per seed, the arms come first in the study file's
order (a suggested arm right after the arm it is suggested from), then the
matched baselines, then the references.

A run's folder holds its config ``<run>.py`` (the arm's config, its
overrides, ``randomness.seed=<seed>`` and the train sampler's seed if the
config sets one; the Runner dumps its own copy over it), the logs and
checkpoints of ``tools/train.py`` and ``tools/test.py``, and at the end
``study_run.json``. A run is *finished* with ``study_run.json``,
*interrupted* with a ``last_checkpoint`` but no ``study_run.json``, else
*missing*.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from .matched import matched_stl_config
from .spec import Study, StudyError, load_config

RECORD = 'study_run.json'
LAST_CHECKPOINT = 'last_checkpoint'
SUGGESTION_DIR = 'suggestion'
FINISHED, INTERRUPTED, MISSING = 'finished', 'interrupted', 'missing'


@dataclass(frozen=True)
class Run:
    """One run of a study at one seed.

    Attributes:
        name (str): The run name (an arm, ``stl_<task>``, ``ref_<task>``).
        seed (int): The seed.
        kind (str): ``'mtl'``, ``'stl'`` or ``'ref'``.
        task (str, optional): The task of an STL or reference run.
        work_dir (str): ``<work_dir>/<name>/seed_<seed>`` (absolute).
        source (str, optional): The arm a matched baseline is derived from,
            or the arm a suggested arm's tree is measured in.
        suggested (bool): Whether the run's tree is suggested from
            ``source``'s run of the same seed.
    """
    name: str
    seed: int
    kind: str
    task: Optional[str]
    work_dir: str
    source: Optional[str] = None
    suggested: bool = False

    @property
    def key(self) -> Tuple[str, int]:
        return self.name, self.seed

    @property
    def label(self) -> str:
        return f'{self.name} seed {self.seed}'

    @property
    def config(self) -> str:
        """The run's config file, in its folder."""
        return osp.join(self.work_dir, f'{self.name}.py')

    @property
    def record(self) -> str:
        return osp.join(self.work_dir, RECORD)

    @property
    def depends_on(self) -> Optional[Tuple[str, int]]:
        """The run that must finish first (a suggested arm's source)."""
        return (self.source, self.seed) if self.suggested else None

    def suggestion(self) -> Tuple[str, str]:
        """The suggested config and JSON that the suggestion writes."""
        folder = osp.join(self.work_dir, SUGGESTION_DIR)
        return (osp.join(folder, 'suggested_branching.py'),
                osp.join(folder, 'suggested_branching.json'))


def run_dir(study: Study, name: str, seed: int) -> str:
    return osp.join(study.work_dir, name, f'seed_{seed}')


def run_names(study: Study) -> List[dict]:
    """The study's runs without seeds, in order: ``dict(name, kind, task,
    source, suggested)``."""
    arms, placed = [], set()
    waiting: Dict[str, list] = {}
    for arm in study.arms.values():
        entry = dict(
            name=arm.name,
            kind='mtl',
            task=None,
            source=arm.suggest_from,
            suggested=arm.suggest_from is not None)
        if entry['suggested'] and arm.suggest_from not in placed:
            waiting.setdefault(arm.suggest_from, []).append(entry)
            continue
        arms.append(entry)
        placed.add(arm.name)
        arms += waiting.pop(arm.name, [])
    stl = [
        dict(
            name=f'stl_{t}',
            kind='stl',
            task=t,
            source=study.matched_from,
            suggested=False) for t in study.stl_tasks
    ]
    ref = [
        dict(
            name=f'ref_{t}', kind='ref', task=t, source=None, suggested=False)
        for t in study.references
    ]
    return arms + stl + ref


def all_runs(study: Study) -> List[Run]:
    """Every run of the study, seed by seed."""
    entries = run_names(study)
    return [
        Run(work_dir=run_dir(study, entry['name'], seed), seed=seed, **entry)
        for seed in study.seeds for entry in entries
    ]


def plan_runs(study: Study,
              only: Optional[Sequence[str]] = None,
              seeds: Optional[Sequence[int]] = None) -> List[Run]:
    """The selected runs, in order.

    Args:
        study (Study): The study.
        only (Sequence[str], optional): Run names; default all.
        seeds (Sequence[int], optional): Seeds of the study; default all.

    Raises:
        StudyError: An unknown run name or seed, or a suggested run whose
            source run is neither finished nor selected.
    """
    names = [entry['name'] for entry in run_names(study)]
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        raise StudyError(f'--only {unknown}: the runs of {study.path} are '
                         f'{names}')
    bad = [s for s in seeds or [] if s not in study.seeds]
    if bad:
        raise StudyError(f'--seeds {bad}: the seeds of {study.path} are '
                         f'{study.seeds}')
    runs = [
        r for r in all_runs(study)
        if (not only or r.name in only) and (not seeds or r.seed in seeds)
    ]
    selected = {r.key for r in runs}
    for run in runs:
        need = run.depends_on
        if need and need not in selected and run_state(
                Run(need[0], need[1], 'mtl', None, run_dir(study, *
                                                           need))) != FINISHED:
            raise StudyError(
                f'{run.label} is suggested from {need[0]} seed {need[1]}, '
                'which has not finished: select it too (--only ... '
                f'{need[0]})')
    return runs


def run_state(run: Run) -> str:
    """``'finished'``, ``'interrupted'`` or ``'missing'``."""
    if osp.isfile(run.record):
        return FINISHED
    if osp.isfile(osp.join(run.work_dir, LAST_CHECKPOINT)):
        return INTERRUPTED
    return MISSING


def read_record(run: Run) -> dict:
    with open(run.record) as f:
        return json.load(f)


def last_checkpoint(run: Run) -> str:
    """The checkpoint that the run's ``last_checkpoint`` names."""
    with open(osp.join(run.work_dir, LAST_CHECKPOINT)) as f:
        return f.read().strip()


def set_seed(cfg: Config, seed: int) -> Config:
    """``randomness.seed = seed``, and the train sampler's seed if the
    config sets one."""
    cfg.merge_from_dict({'randomness.seed': seed})
    sampler = (cfg.get('train_dataloader') or {}).get('sampler')
    if isinstance(sampler, dict) and 'seed' in sampler:
        sampler['seed'] = seed
    return cfg


def run_config(study: Study, run: Run) -> Config:
    """The config of a run: arm (or suggested tree, or matched baseline, or
    reference) + overrides + seed, its ``work_dir`` the run's folder and
    ``resume=False``.

    Raises:
        FileNotFoundError: A suggested run whose suggestion is not written.
    """
    if run.kind == 'ref':
        reference = study.references[run.task]
        cfg = load_config(reference.config, reference.overrides)
    elif run.kind == 'stl':
        cfg = matched_stl_config(study.arm_config(run.source), run.task)
    elif run.suggested:
        suggested, _ = run.suggestion()
        if not osp.isfile(suggested):
            raise FileNotFoundError(
                f'{run.label}: the suggested config {suggested} is not '
                'written yet')
        cfg = load_config(suggested, study.arms[run.name].overrides)
    else:
        cfg = study.arm_config(run.name)
    set_seed(cfg, run.seed)
    cfg.work_dir = run.work_dir
    # a suggested tree inherits the dump of a source run that may have
    # resumed; the study passes --resume itself
    cfg.resume = False
    return cfg


def write_record(run: Run, seconds: float, checkpoint: str) -> dict:
    """Write ``study_run.json`` (atomically): the run is finished."""
    record = dict(
        run=run.name,
        seed=run.seed,
        kind=run.kind,
        task=run.task,
        config=run.config,
        seconds=round(float(seconds), 1),
        checkpoint=checkpoint)
    tmp = run.record + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, run.record)
    return record


def finished_runs(study: Study) -> Dict[str, dict]:
    """Run name -> ``dict(kind, task, seeds={seed: work_dir})`` of the
    finished runs (names without a finished seed left out), for
    ``build_study_report``."""
    runs: Dict[str, dict] = {}
    for run in all_runs(study):
        if run_state(run) == FINISHED:
            entry = runs.setdefault(
                run.name, dict(kind=run.kind, task=run.task, seeds={}))
            entry['seeds'][run.seed] = run.work_dir
    return runs


def seconds_by_kind(study: Study) -> Dict[str, float]:
    """The mean ``seconds`` of the finished runs of each kind."""
    seconds: Dict[str, List[float]] = {}
    for run in all_runs(study):
        if run_state(run) == FINISHED:
            value = read_record(run).get('seconds')
            if isinstance(value, (int, float)):
                seconds.setdefault(run.kind, []).append(float(value))
    return {k: sum(v) / len(v) for k, v in seconds.items()}


def time_left(study: Study, pending: Sequence[Run]) -> Optional[float]:
    """Estimated seconds for ``pending``: per run the mean time of the
    finished runs of its kind (of any kind if none); None if no run has
    finished."""
    means = seconds_by_kind(study)
    if not means:
        return None
    overall = sum(means.values()) / len(means)
    return sum(means.get(r.kind, overall) for r in pending)


def format_seconds(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return f'{seconds:.0f} s'
    if minutes < 90:
        return f'{minutes:.0f} min'
    return f'{minutes / 60:.1f} h'
