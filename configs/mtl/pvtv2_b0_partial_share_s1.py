# Multi-task PVT v2-b0, partial sharing: stage 0 shared, 1-3 per task.
_base_ = './pvtv2_b0_full_share.py'

model = dict(backbone=dict(share_stages=1))
