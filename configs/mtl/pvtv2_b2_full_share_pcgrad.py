# Multi-task PVT v2-b2, full sharing, tasks balanced by PCGrad (Yu et al.
# 2020). Per-task gradients of the shared backbone come from the one joint
# backward (disjoint task graphs); under DDP they are averaged over the ranks
# before the aggregation.
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', aggregator=dict(type='PCGrad'))
