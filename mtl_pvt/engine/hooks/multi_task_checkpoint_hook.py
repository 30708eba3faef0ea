"""mmengine's CheckpointHook that a kill, a NaN, a skipped metric or a
checkpoint of another model cannot turn into lost or wrong work."""
import glob
import math
import os
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from mtl_pvt.engine.checkpoint_fit import (PARTIAL_KEY,
                                           CheckpointMismatchError,
                                           checkpoint_layout, fit_state,
                                           mismatch_hint, nonfinite_keys,
                                           state_dict_of, summarize_keys)
from mtl_pvt.engine.run_recipe import (ACCEPT_KEY, RECIPE_KEY, recipe_changes,
                                       run_recipe)
from mtl_pvt.evaluation.delta_m import DELTA_M_KEY
from mtl_pvt.registry import HOOKS

TMP_SUFFIX = '.tmp'
# message_hub info: checkpoints to remove once the next one is complete
PENDING_KEY = 'mtl_pvt.pending_removal'


def _fsync(path: str) -> None:
    """Flush a file, or a folder's entries (a rename), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _as_float(value) -> Optional[float]:
    """A metric as a float (numpy and torch scalars too), else None."""
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path + TMP_SUFFIX
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync(osp.dirname(osp.abspath(path)))


class RecipeChangedError(RuntimeError):
    """A resume whose run would differ from the checkpoint's recipe."""


@HOOKS.register_module()
class MultiTaskCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic writes, finite weights, a ``save_best``
    that survives a validation without its metric, and a report of how a
    loaded checkpoint fits the model. Works for any model (STL or MTL).

    - **Atomic**: a checkpoint (regular or best) is written to
      ``<name>.tmp`` in the out dir and renamed; ``last_checkpoint`` is
      replaced the same way, after the rename; checkpoints beyond
      ``max_keep_ckpts`` and the previous best are removed only then. A kill
      at any moment leaves ``last_checkpoint`` naming a complete
      checkpoint; files it left behind (``*.tmp``, an old checkpoint due
      for removal) are removed when the run resumes.
    - **Finite**: a state dict with a NaN or inf is not written: the run
      stops with ``FloatingPointError`` naming the tensors, and the last
      good checkpoint stays.
    - **save_best**: a metric of ``save_best`` missing from a validation
      because it was skipped (``mtl/delta_m`` when a task's evaluator
      returned nothing; a task metric of a task that returned nothing), or
      None or not finite, keeps the previous best and logs why; training
      goes on. A name that no validation can return is still a KeyError.
    - **Load report**: after a checkpoint is read, the log says how many of
      the model's tensors it fits and names the missing, unexpected and
      mismatched parts (task paths, stage copies). A backbone that would
      keep its initialisation, or a resumed checkpoint that does not fit
      exactly, is an error unless the config sets
      ``load_from_partial=True``.
    - **Recipe**: every checkpoint records what the run's data order and
      updates depend on (tasks, per-task batch sizes, sampler mode and task
      choice, world size, seeds, sharing tree:
      :func:`~mtl_pvt.engine.run_recipe.run_recipe`); a resume whose run
      differs in any of them stops with the differences listed, before
      anything is loaded, unless the config sets
      ``accept_recipe_change=True`` (``tools/train.py
      --accept-recipe-change``), which logs them.

    Examples:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='MultiTaskCheckpointHook', by_epoch=False,
        ...     interval=1000, max_keep_ckpts=1, save_best='mtl/delta_m',
        ...     rule='greater'))

    Args: as ``mmengine.hooks.CheckpointHook``.
    """

    # -- writing -----------------------------------------------------------

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _write(self, runner, filename: str, **kwargs) -> None:
        """``runner.save_checkpoint`` to ``filename`` in the out dir, through
        a temporary file and a rename on a local disk."""
        local = self._is_local()
        runner.save_checkpoint(
            self.out_dir,
            filename + TMP_SUFFIX if local else filename,
            self.file_client_args,
            backend_args=self.backend_args,
            **kwargs)
        if local and is_main_process():
            path = osp.join(self.out_dir, filename)
            _fsync(path + TMP_SUFFIX)
            os.replace(path + TMP_SUFFIX, path)
            _fsync(self.out_dir)

    def _remove(self, paths: List[str]) -> None:
        for path in paths:
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints
                self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        old = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                old.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        old = [
            self.file_backend.join_path(self.out_dir,
                                        self.filename_tmpl.format(s))
            for s in old
        ]
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # A run resumed from this checkpoint removes them, should a kill
        # come between the rename and the removal.
        runner.message_hub.update_info(PENDING_KEY, old)
        self._write(
            runner,
            filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            **self.args)
        if not is_main_process():
            return
        write_text_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        self._remove(old)
        runner.message_hub.update_info(PENDING_KEY, [])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[RECIPE_KEY] = run_recipe(runner)
        bad = nonfinite_keys(checkpoint.get('state_dict') or {})
        if bad:
            last = runner.message_hub.get_info('last_ckpt')
            raise FloatingPointError(
                f'not saving a checkpoint at iteration {runner.iter + 1}: '
                f'{len(bad)} of {len(checkpoint["state_dict"])} tensors are '
                f'not finite ({summarize_keys(bad)}); the last checkpoint '
                f'written stays: {self._last_complete(runner) or last}')

    def _last_complete(self, runner) -> Optional[str]:
        path = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(path):
            with open(path) as f:
                return f.read().strip()
        return None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not (is_main_process() and self._is_local()):
            return
        # leftovers of a run killed while it saved
        pending = runner.message_hub.get_info(PENDING_KEY) or []
        kept = {
            self.file_backend.join_path(self.out_dir,
                                        self.filename_tmpl.format(step))
            for step in getattr(self, 'keep_ckpt_ids', [])
        }
        kept.add(self._last_complete(runner))
        self._remove([p for p in pending if p not in kept])
        runner.message_hub.update_info(PENDING_KEY, [])
        for pattern in (osp.join(self.out_dir, '*.pth' + TMP_SUFFIX),
                        osp.join(runner.work_dir,
                                 'last_checkpoint' + TMP_SUFFIX)):
            for tmp in glob.glob(pattern):
                os.remove(tmp)

    # -- save_best ---------------------------------------------------------

    def _missing_metric_reason(self, runner, key: str, metrics: dict) -> str:
        """Why ``key`` is not among ``metrics``; KeyError where no
        validation could return it (a misspelt ``save_best``)."""
        loop = runner.val_loop
        tasks = list(getattr(loop, 'dataloaders', None) or [])
        silent = [
            t for t in tasks
            if not any(k.startswith(t + '/') for k in metrics)
        ]
        if key == DELTA_M_KEY and getattr(loop, 'delta_m', None):
            return f'delta-m was skipped: task(s) {silent} returned no ' \
                'metrics'
        task = key.split('/', 1)[0]
        if task in silent:
            return f'task {task!r} returned no metrics'
        raise KeyError(f'save_best={key!r} is not among the validation '
                       f'metrics {sorted(metrics)}')

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's, except: a metric that is missing because it was
        skipped, None or not finite keeps the previous best (logged); the
        new best is written (atomically) before the old one is removed."""
        if not self.save_best:
            return
        if self.by_epoch:
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            cur_type, cur_time = 'iter', runner.iter
        ckpt_filename = self.filename_tmpl.format(cur_time)
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])
        single = len(self.key_indicators) == 1
        updated = False
        for key, rule in zip(self.key_indicators, self.rules):
            score_key = 'best_score' if single else f'best_score_{key}'
            ckpt_key = 'best_ckpt' if single else f'best_ckpt_{key}'
            previous = self.best_ckpt_path if single else \
                self.best_ckpt_path_dict[key]
            best = runner.message_hub.get_info(score_key,
                                               self.init_value_map[rule])
            score = _as_float(metrics.get(key))
            if score is None or not math.isfinite(score):
                why = self._missing_metric_reason(runner, key, metrics) \
                    if key not in metrics else f'it is {metrics[key]!r}'
                kept = f'the best checkpoint stays {previous} ({key} = ' \
                    f'{best})' if previous else 'no best checkpoint yet'
                runner.logger.warning(
                    f'save_best: no {key!r} at {cur_type} {cur_time} ({why});'
                    f' {kept}; training goes on')
                continue
            if not self.is_better_than[key](score, best):
                continue
            updated = True
            runner.message_hub.update_info(score_key, score)
            name = f'best_{key}_{ckpt_filename}'.replace('/', '_')
            path = self.file_backend.join_path(self.out_dir, name)
            if single:
                self.best_ckpt_path = path
            else:
                self.best_ckpt_path_dict[key] = path
            runner.message_hub.update_info(ckpt_key, path)
            self._write(
                runner,
                name,
                save_optimizer=False,
                save_param_scheduler=False,
                meta=meta,
                by_epoch=False)
            if previous and previous != path and is_main_process():
                self._remove([previous])
                runner.logger.info(
                    f'The previous best checkpoint {previous} is removed')
            runner.logger.info(
                f'The best checkpoint with {score:0.4f} {key} at {cur_time} '
                f'{cur_type} is saved to {name}.')
        # as mmengine: the regular checkpoint carries the new best
        if updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, cur_time, meta)

    # -- loading -----------------------------------------------------------

    def _check_recipe(self, runner, checkpoint: dict) -> None:
        """Stop a resume that changes the recipe, unless accepted."""
        meta = checkpoint.get('meta') or {}
        saved = meta.get(RECIPE_KEY) if isinstance(meta, dict) else None
        if saved is None:
            runner.logger.info('the resumed checkpoint records no recipe '
                               '(written before mtl_pvt recorded them): '
                               'not compared')
            return
        changes = recipe_changes(saved, run_recipe(runner))
        if not changes:
            return
        listed = '\n  '.join(changes)
        if runner.cfg.get(ACCEPT_KEY, False):
            runner.logger.warning(
                'resuming with a changed recipe (accepted by '
                f'{ACCEPT_KEY}=True):\n  {listed}')
            return
        # The Runner has dumped this run's config over the work dir's copy:
        # the copy of the checkpoint's run it is again.
        text = meta.get('cfg')
        if isinstance(text, str) and runner.cfg.filename and \
                is_main_process():
            write_text_atomic(
                osp.join(runner.work_dir, osp.basename(runner.cfg.filename)),
                text)
        raise RecipeChangedError(
            'the resumed checkpoint was written by another recipe; the '
            'sampler position, the schedule and any matched baseline assume '
            f'the checkpoint\'s:\n  {listed}\nrestore these settings, or '
            'accept the change with tools/train.py --accept-recipe-change '
            f'(--cfg-options {ACCEPT_KEY}=True); the checkpoint is '
            'untouched')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Stop a resume with a changed recipe; log how the checkpoint fits
        the model; stop if a backbone would keep its initialisation or a
        resumed checkpoint does not fit."""
        if getattr(runner, '_resume', False):
            self._check_recipe(runner, checkpoint)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = state_dict_of(checkpoint)
        fit = fit_state(state, model.state_dict())
        resume = bool(getattr(runner, '_resume', False))
        meta = checkpoint.get('meta') or {}
        converter = meta.get('converter') if isinstance(meta, dict) else None
        if converter:
            runner.logger.info(
                f'the checkpoint was made by {converter} from '
                f'{meta.get("sources")} (official: '
                f'{meta.get("pvt_official")}); stage copies from: '
                f'{meta.get("backbone_sources")}')
        name = 'the resumed checkpoint' if resume else \
            'the loaded checkpoint'
        if fit.exact:
            runner.logger.info(
                f'{name}: all {fit.num_model} model tensors fit')
            return
        partial = bool(runner.cfg.get(PARTIAL_KEY))
        if (resume and not fit.model_complete) or \
                (fit.backbone_problems and not partial):
            layout = checkpoint_layout(state)
            multi_task = hasattr(model, 'task_names')
            raise CheckpointMismatchError(
                fit.describe(name) + mismatch_hint(
                    runner.cfg.filename, 'CHECKPOINT', layout, multi_task))
        runner.logger.warning(fit.describe(name))
