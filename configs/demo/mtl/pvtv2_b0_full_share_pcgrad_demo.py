# Demo, full sharing, task gradients on the shared backbone combined by PCGrad
# (Yu et al. 2020): each task's gradient is projected off the others' where
# they conflict. The per-task gradients come from the one joint backward (the
# tasks' graphs are disjoint).
_base_ = './pvtv2_b0_full_share_demo.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', aggregator=dict(type='PCGrad'))
