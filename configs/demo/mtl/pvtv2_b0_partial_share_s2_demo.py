# Demo of the multi-task model, partial sharing: stages 0-1 shared, 2-3 per
# task (each copy starts from the same weights).
_base_ = './pvtv2_b0_full_share_demo.py'

model = dict(backbone=dict(share_stages=2))
