from .aggregators import (IMTLG, MGDA, AlignedMTL, BaseAggregator, CAGrad,
                          Mean, NashMTL, PCGrad, Sum, UPGrad)

__all__ = [
    'BaseAggregator', 'Mean', 'Sum', 'PCGrad', 'CAGrad', 'MGDA', 'IMTLG',
    'NashMTL', 'AlignedMTL', 'UPGrad'
]
