# Multi-task PVT v2-b0, partial sharing: stages 0-2 shared, 3-3 per task.
_base_ = './pvtv2_b0_full_share.py'

model = dict(backbone=dict(share_stages=3))
