# Multi-task PVT v2-b2, partial sharing: stage 0 is shared by the
# three tasks, stages 1-3 are copied per task (each copy starts from the same
# ImageNet weights).
_base_ = './pvtv2_b2_full_share.py'

model = dict(backbone=dict(share_stages=1))
