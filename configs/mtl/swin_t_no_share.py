# Multi-task Swin-T, no sharing: one Swin-T per task, trained in one run.
_base_ = './swin_t_full_share.py'

model = dict(backbone=dict(share_stages=0))
