# Multi-task ResNet-50, partial sharing: stages 0-1 (stem + layer1, layer2)
# shared by the three tasks, layer3 and layer4 copied per task (each copy
# starts from the same ImageNet weights).
_base_ = './resnet50_full_share.py'

model = dict(backbone=dict(share_stages=2))
