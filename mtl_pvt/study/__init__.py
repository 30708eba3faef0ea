"""Studies: matched single-task baselines and grids of runs over seeds."""
from .launch import SlurmOptions, run_local, submit_slurm
from .matched import matched_recipe_diff, matched_stl_config
from .plan import Run, finished_runs, plan_runs
from .spec import Study, StudyError, load_study

__all__ = [
    'Run', 'SlurmOptions', 'Study', 'StudyError', 'finished_runs',
    'load_study', 'matched_recipe_diff', 'matched_stl_config', 'plan_runs',
    'run_local', 'submit_slurm'
]
