# The full-sharing demo with its per-stage task affinity measured: a
# lookahead (TAG, per stage) every 60 iterations, 4 measurements over the
# 240, logged to <work_dir>/<timestamp>/affinity.json. The hook does not
# change training (the same weights as pvtv2_b0_full_share_demo.py); it
# costs a few percent of the training time (benchmarks/affinity_cost.py).
# tools/analysis_tools/suggest_branching.py turns the measurements into a
# stage_groups tree; the report plots them.
_base_ = ['./pvtv2_b0_full_share_demo.py']

custom_hooks = _base_.custom_hooks + [
    dict(type='TaskAffinityHook', interval=60)
]
