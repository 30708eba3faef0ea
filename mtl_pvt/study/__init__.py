"""Studies: matched single-task baselines and grids of runs over seeds."""
from .launch import run_local
from .matched import matched_recipe_diff, matched_stl_config
from .parallel import make_slots, run_parallel
from .plan import Run, finished_runs, plan_runs
from .slurm import SlurmOptions, submit_slurm
from .spec import Study, StudyError, load_study

__all__ = [
    'Run', 'SlurmOptions', 'Study', 'StudyError', 'finished_runs',
    'load_study', 'make_slots', 'matched_recipe_diff', 'matched_stl_config',
    'plan_runs', 'run_local', 'run_parallel', 'submit_slurm'
]
