from .base_loss_weighting import BaseLossWeighting
from .dynamic_weight_average import DynamicWeightAverage
from .famo import FAMO
from .geometric_loss_strategy import GeometricLossStrategy
from .grad_norm import GradNorm
from .random_loss_weighting import RandomLossWeighting
from .uncertainty_weighting import UncertaintyWeighting

__all__ = [
    'BaseLossWeighting', 'DynamicWeightAverage', 'FAMO',
    'GeometricLossStrategy', 'GradNorm', 'RandomLossWeighting',
    'UncertaintyWeighting'
]
