# Balancing the tasks on the demo: full sharing with equal weights, with
# uncertainty weighting and with PCGrad, and the tree that the full-sharing
# run's per-stage task affinity suggests, against the matched single-task
# baselines. The arms differ in the sharing and in the declared balancing
# keys (`vary`).
#   python tools/study.py run configs/studies/demo_balancing.py
_base_ = './demo.py'

work_dir = 'work_dirs/demo_balancing'
arms = dict(
    _delete_=True,
    full_share=dict(
        config='configs/demo/mtl/pvtv2_b0_full_share_affinity_demo.py'),
    full_share_uw=dict(
        config='configs/demo/mtl/pvtv2_b0_full_share_uw_demo.py'),
    full_share_pcgrad=dict(
        config='configs/demo/mtl/pvtv2_b0_full_share_pcgrad_demo.py'),
    suggested=dict(suggest_from='full_share'))
stl = dict(matched_from='full_share')
vary = ['optim_wrapper.weighting', 'optim_wrapper.aggregator', 'custom_hooks']
