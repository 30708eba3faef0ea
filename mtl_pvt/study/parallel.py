"""Several runs of a study at once on one machine (``--jobs N``).

Each of the ``N`` *slots* runs one run at a time with its own resources:
its GPUs (``--gpus-per-run G``: ``CUDA_VISIBLE_DEVICES`` is the slot's
``G`` of the visible GPUs; ``G > 1`` trains with ``torchrun``) or, without
GPUs, its CPU cores (``OMP_NUM_THREADS`` and the process's CPU affinity:
``--threads-per-run T``, by default the cores divided among the slots).
Runs start in the plan's order; a suggested arm waits for its source run
of the same seed. Finished runs are skipped and interrupted ones resume,
as one after the other; a run that fails does not stop the others, and
the study ends with an error naming every failed run.
"""
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .launch import RunFailed, forward_signals, run_steps
from .plan import FINISHED, Run, format_seconds, run_state
from .spec import Study, StudyError


@dataclass
class Slot:
    """What one of the parallel runs may use.

    Attributes:
        index (int): 0 to N-1.
        env (dict): Environment variables of its tools.
        cores (list[int], optional): Its CPU affinity (None: any core).
        gpus (int): GPUs of its runs (0: the CPU); > 1 trains with
            torchrun.
    """
    index: int
    env: Dict[str, str] = field(default_factory=dict)
    cores: Optional[List[int]] = None
    gpus: int = 0

    @property
    def port(self) -> int:
        """A rendezvous port of its own (torchrun)."""
        return 29500 + 10 * self.index


def make_slots(jobs: int,
               gpus_per_run: int = 0,
               threads_per_run: Optional[int] = None,
               cpu_count: Optional[int] = None,
               visible: Optional[Sequence[str]] = None) -> List[Slot]:
    """The ``jobs`` slots, their GPUs or cores shared out.

    Args:
        visible (Sequence[str], optional): The GPU ids to share out
            (default: ``CUDA_VISIBLE_DEVICES``, else ``0..jobs*G-1``).

    Raises:
        StudyError: Fewer visible GPUs than ``jobs x gpus_per_run``.
    """
    if jobs < 1:
        raise StudyError(f'--jobs must be at least 1, not {jobs}')
    cpu_count = cpu_count or os.cpu_count() or 1
    threads = threads_per_run or max(1, cpu_count // jobs)
    if visible is None and gpus_per_run:
        listed = os.environ.get('CUDA_VISIBLE_DEVICES')
        visible = listed.split(',') if listed else [
            str(i) for i in range(jobs * gpus_per_run)
        ]
    if gpus_per_run and len(visible) < jobs * gpus_per_run:
        raise StudyError(
            f'--jobs {jobs} x --gpus-per-run {gpus_per_run} needs '
            f'{jobs * gpus_per_run} GPUs; CUDA_VISIBLE_DEVICES lists '
            f'{len(visible)} ({",".join(visible)})')
    slots = []
    for i in range(jobs):
        env = dict(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if gpus_per_run:
            env['CUDA_VISIBLE_DEVICES'] = ','.join(
                visible[i * gpus_per_run:(i + 1) * gpus_per_run])
        # pinned only where every slot gets cores of its own
        cores = list(range(i * threads, (i + 1) * threads)) \
            if jobs * threads <= cpu_count else None
        slots.append(Slot(i, env, cores, gpus_per_run))
    return slots


class _Echo:
    """One progress display for all slots: whole lines, each named by
    its run."""

    def __init__(self, echo):
        self._echo = echo
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._echo(line)

    def of(self, run: Run):
        return lambda line: self(f'  [{run.label}] {line.strip()}')


def run_parallel(study: Study,
                 runs: Sequence[Run],
                 slots: Sequence[Slot],
                 echo=print,
                 poll: float = 0.2) -> List[dict]:
    """Train and test the unfinished ``runs``, ``len(slots)`` at a time.

    Returns:
        list[dict]: The records of the runs finished now, in the order
        they finished.

    Raises:
        RunFailed: Some runs failed (named); the others ran to their end.
    """
    say = _Echo(echo)
    todo = []
    for run in runs:
        if run_state(run) == FINISHED:
            say(f'{run.label}: finished before, skipped ({run.record})')
        else:
            todo.append(run)
    say(f'{len(todo)} run(s) to go, {len(slots)} at a time')
    lock = threading.Condition()
    free = list(slots)
    running: Dict[str, Run] = {}
    done: List[dict] = []
    failed: Dict[str, str] = {}
    began = time.time()

    def ready(run: Run) -> Optional[bool]:
        """True: may start; False: waits; None: its source failed."""
        need = run.depends_on
        if need is None:
            return True
        source = next((r for r in runs if (r.name, r.seed) == need), None)
        if source is None or run_state(source) == FINISHED:
            return True
        if source.label in failed:
            return None
        return False

    def work(run: Run, slot: Slot) -> None:
        try:
            record = run_steps(study, run, say.of(run), slot=slot)
            with lock:
                done.append(record)
            say(f'{run.label}: done in {format_seconds(record["seconds"])} '
                f'(slot {slot.index})')
        except Exception as error:  # noqa: B902 (reported at the end)
            with lock:
                failed[run.label] = str(error)
            say(f'{run.label}: FAILED: {error}')
        finally:
            with lock:
                running.pop(run.label, None)
                free.append(slot)
                free.sort(key=lambda s: s.index)
                lock.notify_all()

    with forward_signals() as stopping:
        with lock:
            while todo or running:
                if stopping:
                    todo.clear()
                started = False
                for run in list(todo):
                    if not free:
                        break
                    state = ready(run)
                    if state is None:
                        todo.remove(run)
                        failed[run.label] = 'its source run failed'
                        continue
                    if not state:
                        continue
                    todo.remove(run)
                    slot = free.pop(0)
                    running[run.label] = run
                    say(f'{run.label}: start in slot {slot.index} '
                        f'({_resources(slot)}), {len(todo)} waiting')
                    threading.Thread(
                        target=work, args=(run, slot), daemon=True).start()
                    started = True
                if not started:
                    if not running and todo:  # waits for nothing running
                        for run in todo:
                            failed[run.label] = 'its source run never ran'
                        todo.clear()
                    lock.wait(poll)
    say(f'{len(done)} run(s) done in {format_seconds(time.time() - began)}'
        f', {len(failed)} failed')
    if stopping:
        raise RunFailed('stopped on a signal; run the study again to resume')
    if failed:
        raise RunFailed('failed runs: ' +
                        '; '.join(f'{label}: {why}'
                                  for label, why in failed.items()))
    return done


def _resources(slot: Slot) -> str:
    if slot.gpus:
        return f'GPUs {slot.env["CUDA_VISIBLE_DEVICES"]}'
    cores = f', cores {slot.cores[0]}-{slot.cores[-1]}' if slot.cores else ''
    return f'{slot.env["OMP_NUM_THREADS"]} threads{cores}'
