# Multi-task Swin-T, partial sharing: stages 0-1 shared by the three tasks,
# stages 2-3 copied per task (each copy starts from the same ImageNet
# weights).
_base_ = './swin_t_full_share.py'

model = dict(backbone=dict(share_stages=2))
