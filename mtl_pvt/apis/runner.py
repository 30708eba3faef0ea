"""The Runner of mtl_pvt configs: mmengine's, with what a run needs done
to its config before the Runner exists.

Every mtl_pvt config names it (``runner_type='mtl_pvt.MultiTaskRunner'``
in ``configs/_base_/default_runtime.py``), so each entry point that
honours ``runner_type`` builds it: ``tools/train.py`` and
``tools/test.py``, ``RUNNERS.build(cfg)`` (the OpenMMLab libraries' own
tools, ``mim train``) and ``MultiTaskRunner.from_cfg(cfg)`` in a script
or notebook. Before mmengine's ``Runner.__init__`` (which creates the
work dir and wraps the model) :meth:`MultiTaskRunner.from_cfg`

- checks the config (:func:`mtl_pvt.utils.check_config`: paths, types,
  task names), so that bad input stops before the work dir exists;
- training: fits the parameter schedules to a short run
  (:func:`mtl_pvt.utils.schedules.fit_schedules`), checks ``load_from``
  against the model and converts a checkpoint of another layout into the
  work dir (:func:`mtl_pvt.converters.load_check.check_load_from`);
- sets up distributed runs: ``find_unused_parameters`` for alternating
  steps, the model wrapper of one-task-at-a-time steps, and on a machine
  without an accelerator the gloo process group and a CPU DDP wrapper
  (:mod:`mtl_pvt.engine.model_wrappers`).

A plain ``mmengine.runner.Runner.from_cfg(cfg)`` skips those steps except
the schedule fitting, which ``MultiTaskIterBasedTrainLoop`` does itself:
a single-process multi-task run trains the same through it.
"""
import copy
from typing import List, Tuple

from mmengine.config import Config
from mmengine.runner import Runner

from mtl_pvt.converters.load_check import check_load_from
from mtl_pvt.engine.model_wrappers import (configure_task_by_task,
                                           configure_unused_parameters,
                                           setup_cpu_distributed)
from mtl_pvt.registry import RUNNERS
from mtl_pvt.utils.config_check import check_config
from mtl_pvt.utils.schedules import fit_schedules

Note = Tuple[int, str]
MODES = ('train', 'test')


def prepare_config(cfg: Config, mode: str = 'train') -> List[Note]:
    """What :meth:`MultiTaskRunner.from_cfg` does to ``cfg`` (in place)
    before the Runner exists; the notes for the run's log.

    Args:
        mode (str): ``'train'`` (checks the train and val stages, fits the
            schedules, checks ``load_from``) or ``'test'`` (checks the test
            stage).
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, not {mode!r}')
    notes: List[Note] = []
    if mode == 'train':
        check_config(cfg, stages=('train', 'val'))
        notes += fit_schedules(cfg)
        notes += check_load_from(cfg)
        configure_unused_parameters(cfg)
        configure_task_by_task(cfg)
    else:
        check_config(cfg, stages=('test', ))
    setup_cpu_distributed(cfg)
    return notes


def build_runner(cfg: Config, mode: str = 'train') -> Runner:
    """The runner of ``cfg`` as the tools build it: ``MultiTaskRunner``
    (or a subclass that ``cfg.runner_type`` names); a config that names
    another runner gets it, built after :func:`prepare_config`.

    Args:
        mode (str): ``'train'`` or ``'test'``.
    """
    runner_type = cfg.get('runner_type')
    runner_cls = RUNNERS.get(runner_type) if runner_type else None
    if runner_cls is None and runner_type:
        raise KeyError(f'runner_type: {runner_type!r} is not registered')
    if runner_cls is not None and issubclass(runner_cls, MultiTaskRunner):
        return runner_cls.from_cfg(cfg, mode)
    cfg = copy.deepcopy(cfg)
    notes = prepare_config(cfg, mode)
    runner = runner_cls.from_cfg(cfg) if runner_cls else Runner.from_cfg(cfg)
    for level, message in notes:
        runner.logger.log(level, message)
    return runner


@RUNNERS.register_module()
class MultiTaskRunner(Runner):
    """``mmengine.runner.Runner`` built by :meth:`from_cfg` after
    :func:`prepare_config`; it runs exactly as mmengine's."""

    @classmethod
    def from_cfg(cls, cfg: Config, mode: str = 'train') -> 'MultiTaskRunner':
        """Build the runner of ``cfg`` (copied, then prepared).

        Args:
            cfg (Config): The full config.
            mode (str): ``'train'`` (default: what ``RUNNERS.build`` and
                ``mim train`` build for) or ``'test'`` (``tools/test.py``).
        """
        cfg = copy.deepcopy(cfg)
        notes = prepare_config(cfg, mode)
        runner = super().from_cfg(cfg)
        for level, message in notes:  # into the work dir's log
            runner.logger.log(level, message)
        return runner
