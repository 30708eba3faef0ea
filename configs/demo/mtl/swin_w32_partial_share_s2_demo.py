# The demo study on a second transformer: the three demo task models of
# configs/demo/mtl/pvtv2_b0_full_share_demo.py on mmdet's Swin Transformer
# at demo size (embed_dims 32, 2 blocks per stage, windows of 4: stage
# channels 32, 64, 128, 256), stages 0-1 shared and 2-3 per task, trained
# on the generated demo data on the CPU. Each task model's backbone entry
# is the plain Swin it would have alone: SharedSwin takes its out_indices,
# and mtl2stl exports the branch with that backbone.
_base_ = './pvtv2_b0_full_share_demo.py'

swin = dict(
    type='mmdet.SwinTransformer',
    embed_dims=32,
    depths=[2, 2, 2, 2],
    num_heads=[1, 2, 4, 8],
    window_size=4,
    drop_path_rate=0.1)
channels = [32, 64, 128, 256]

model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedSwin',
        arch={
            k: v
            for k, v in swin.items() if k != 'type'
        },
        share_stages=2),
    tasks=dict(
        cls=dict(
            backbone=dict(_delete_=True, **swin, out_indices=(3, )),
            head=dict(in_channels=channels[-1])),
        det=dict(
            backbone=dict(_delete_=True, **swin, out_indices=(0, 1, 2, 3)),
            neck=dict(in_channels=channels)),
        seg=dict(
            backbone=dict(_delete_=True, **swin, out_indices=(0, 1, 2, 3)),
            neck=dict(in_channels=channels))))
