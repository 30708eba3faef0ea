from .aligned_mtl import AlignedMTL
from .base_aggregator import BaseAggregator
from .ca_grad import CAGrad
from .imtlg import IMTLG
from .mean import Mean
from .mgda import MGDA
from .nash_mtl import NashMTL
from .pc_grad import PCGrad
from .sum import Sum
from .up_grad import UPGrad

__all__ = [
    'BaseAggregator', 'Mean', 'Sum', 'PCGrad', 'CAGrad', 'MGDA', 'IMTLG',
    'NashMTL', 'AlignedMTL', 'UPGrad'
]
