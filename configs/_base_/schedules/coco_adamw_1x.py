# mmdet's 1x schedule (12 epochs, steps at 8 and 11) with the optimizer of
# its PVT v2 RetinaNets: AdamW, lr 1e-4, weight decay 1e-4, batch 8 x 2.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
