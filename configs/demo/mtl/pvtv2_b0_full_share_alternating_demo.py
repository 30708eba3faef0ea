# Demo of alternating steps: each step holds one task, chosen with
# temperature sampling over the dataset sizes (p_t ~ n_t^(1/T)); all ranks
# run the same task in a step. 900 steps cover about as many samples of
# each task as the 300 joint steps of the full-share demo.
_base_ = './pvtv2_b0_full_share_demo.py'

train_dataloader = dict(
    batch_sampler=dict(mode='alternating', policy='temperature',
                       temperature=2.0))
train_cfg = dict(max_iters=900, val_interval=300)
default_hooks = dict(checkpoint=dict(interval=300))
