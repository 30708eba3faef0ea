# Demo of the multi-task model without sharing: one PVT v2-b0 per task,
# trained jointly in one run.
_base_ = './pvtv2_b0_full_share_demo.py'

model = dict(backbone=dict(share_stages=0))
