"""Dataset metainfo as plain data: what checkpoints store as dataset_meta."""
import json

import numpy as np
import torch

from mtl_pvt.structures import to_plain_meta


class Colour:

    def __str__(self):
        return 'red'


def test_values_become_plain():
    meta = dict(
        classes=('car', 'bus'),
        palette=[np.array([1, 2, 3]),
                 torch.tensor([4, 5, 6])],
        weight=np.float32(0.5),
        colour=Colour(),
        reduce_zero_label=True,
        extra=None)
    assert to_plain_meta(meta) == dict(
        classes=('car', 'bus'),
        palette=[[1, 2, 3], [4, 5, 6]],
        weight=0.5,
        colour='red',
        reduce_zero_label=True,
        extra=None)
    assert type(to_plain_meta(meta)['classes']) is tuple


def test_label_ids_stay_ints_other_keys_become_str():
    """mmseg's label_map (old label id -> new one) keeps its int keys, as
    the library's own checkpoints hold it; keys JSON cannot hold become
    their str()."""
    label_map = {0: 0, np.int64(1): 255}
    other = {('a', 1): 'x', 2.5: 'y'}
    plain = to_plain_meta(dict(label_map=label_map, other=other))
    assert plain['label_map'] == {0: 0, 1: 255}
    assert [type(k) for k in plain['label_map']] == [int, int]
    assert plain['other'] == {"('a', 1)": 'x', 2.5: 'y'}
    json.dumps(plain)


def test_round_trips_through_a_weights_only_checkpoint(tmp_path):
    label_map = {0: 0, 1: 255}
    plain = to_plain_meta(dict(classes=('wall', 'car'), label_map=label_map))
    torch.save(dict(meta=dict(dataset_meta=plain)), tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)
    assert loaded['meta']['dataset_meta'] == plain
