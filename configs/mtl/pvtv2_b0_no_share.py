# Multi-task PVT v2-b0 without sharing: one b0 backbone per task.
_base_ = './pvtv2_b0_full_share.py'

model = dict(backbone=dict(share_stages=0))
