from .loops import MultiTaskTestLoop, MultiTaskValLoop
from .train_loop import MultiTaskIterBasedTrainLoop

__all__ = [
    'MultiTaskIterBasedTrainLoop', 'MultiTaskTestLoop', 'MultiTaskValLoop'
]
