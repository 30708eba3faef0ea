# Multi-task PVT v2-b2, full sharing, tasks balanced by IMTL-G (Liu et al.
# 2021), equal projections. Per-task gradients of the shared backbone come from
# the one joint backward (disjoint task graphs); under DDP they are averaged
# over the ranks before the aggregation.
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', aggregator=dict(type='IMTLG'))
