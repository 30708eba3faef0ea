# Multi-task ResNet-50, no sharing: one ResNet-50 per task, trained in one
# run (the single-task baseline inside the multi-task loop).
_base_ = './resnet50_full_share.py'

model = dict(backbone=dict(share_stages=0))
