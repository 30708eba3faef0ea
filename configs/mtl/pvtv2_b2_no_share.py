# Multi-task PVT v2-b2 without sharing: one backbone per task (k = 0), the
# reference point of the sharing axis: as many parameters as the three STL
# models together, trained in one run.
_base_ = './pvtv2_b2_full_share.py'

model = dict(backbone=dict(share_stages=0))
