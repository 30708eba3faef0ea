"""The study on other backbones: the ResNet and Swin demo variants train
(with one affinity measurement), validate, test and infer; their branches
export to the libraries' own ``tools/test.py`` with the same numbers, and
convert back to the multi-task layout bit for bit."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mtl_pvt import register_all_modules
from mtl_pvt.apis import MultiTaskInferencer
from mtl_pvt.converters import mtl_to_stl, save_exports, stl_to_mtl

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMOS = {
    'SharedResNet': 'configs/demo/mtl/resnet18_w16_partial_share_s2_demo.py',
    'SharedSwin': 'configs/demo/mtl/swin_w32_partial_share_s2_demo.py',
}
METRICS = dict(cls='accuracy/top1', det='coco/bbox_mAP', seg='mIoU')

# In a fresh Python without mtl_pvt: each exported branch through its
# library's own tools/test.py (as `python tools/test.py CONFIG CKPT`); the
# test metrics, from the json each run logs, go to a file.
LIBRARY_TEST = '''
import glob, json, os.path as osp, runpy, sys
import mmdet, mmpretrain, mmseg
from mmengine.config import Config

out = {}
for task, (config, checkpoint, work_dir) in json.loads(sys.argv[1]).items():
    library = Config.fromfile(config).default_scope
    root = osp.dirname({'mmdet': mmdet, 'mmseg': mmseg,
                        'mmpretrain': mmpretrain}[library].__file__)
    sys.argv = ['test.py', config, checkpoint, '--work-dir', work_dir]
    runpy.run_path(osp.join(root, '.mim', 'tools', 'test.py'),
                   run_name='__main__')
    log, = glob.glob(osp.join(work_dir, '*', '*.json'))
    out[task] = {}
    for line in open(log).read().splitlines():
        out[task].update(json.loads(line))
assert not [m for m in sys.modules if m.startswith('mtl_pvt')]
json.dump(out, open(OUT, 'w'))
'''


def small(cfg, work_dir):
    """Two steps of one sample per task, no workers, an affinity
    measurement at step 1, a validation and a checkpoint at the end."""
    cfg.train_dataloader.batch_sampler.batch_sizes = dict(cls=2, det=1, seg=1)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    for key in ('val_dataloader', 'test_dataloader'):
        for loader in cfg[key].values():
            loader.update(num_workers=0, persistent_workers=False)
    # an untrained detector scores below mmdet's 0.05 threshold
    cfg.model.tasks.det.test_cfg.score_thr = 0.
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.update(interval=2, save_best=None)
    cfg.custom_hooks = list(cfg.get(
        'custom_hooks', [])) + [dict(type='TaskAffinityHook', interval=1)]
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize('backbone', sorted(DEMOS))
def test_backbone_demo(backbone, demo_root, demo_images, tmp_path,
                       monkeypatch):
    monkeypatch.chdir(demo_root)
    config = osp.join(REPO, DEMOS[backbone])
    register_all_modules(init_default_scope=False)
    cfg = small(Config.fromfile(config), tmp_path / 'mtl')
    cfg.experiment_name = f'{backbone}_train'
    trainer = Runner.from_cfg(cfg)
    assert type(trainer.model.backbone).__name__ == backbone
    trainer.train()
    val = {
        k[len('val/'):]: v.current()
        for k, v in trainer.message_hub.log_scalars.items()
        if k.startswith('val/')
    }
    # one affinity measurement, of the two shared stages and the backbone
    log, = glob.glob(str(tmp_path / 'mtl' / '*' / 'affinity.json'))
    records = json.load(open(log))['records']
    assert len(records) == 2
    assert set(records[0]['affinity']) == {'stage0', 'stage1', 'backbone'}

    checkpoint = str(tmp_path / 'mtl' / 'iter_2.pth')
    cfg = small(Config.fromfile(config), tmp_path / 'mtl')
    cfg.load_from, cfg.experiment_name = checkpoint, f'{backbone}_test'
    test = Runner.from_cfg(cfg).test()
    for task, metric in METRICS.items():
        assert test[f'{task}/{metric}'] == pytest.approx(
            val[f'{task}/{metric}'])

    # inference: every task on one image, each stage copy once
    inferencer = MultiTaskInferencer(
        cfg, checkpoint, device='cpu', show_progress=False)
    pred = inferencer(demo_images['det'])['predictions'][0]
    assert set(pred) == set(METRICS)
    assert pred['cls']['pred_class'] in ('car', 'bus', 'clock', 'bottle')

    # export, and each branch through its library's own tools/test.py
    paths = save_exports(
        mtl_to_stl(cfg, checkpoint), str(tmp_path / 'export'), 'demo')
    spec = {
        task: [config_path, ckpt,
               str(tmp_path / f'lib_{task}')]
        for task, (config_path, ckpt) in paths.items()
    }
    out = tmp_path / 'library_metrics.json'
    script = tmp_path / 'library_test.py'
    script.write_text(LIBRARY_TEST.replace('OUT', repr(str(out))))
    result = subprocess.run(
        [sys.executable, str(script),
         json.dumps(spec)],
        cwd=demo_root,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    library = json.load(open(out))
    for task, metric in METRICS.items():
        assert library[task].get(metric) == pytest.approx(
            test[f'{task}/{metric}'], abs=1e-9), (task, library[task])

    # and back: the exported branches assemble the trained model's state
    state = torch.load(
        checkpoint, map_location='cpu', weights_only=False)['state_dict']
    back = stl_to_mtl(cfg, {t: ckpt for t, (_, ckpt) in paths.items()})
    assert back['meta']['missing_keys'] == []
    assert set(back['state_dict']) == set(state)
    for key, value in state.items():
        assert torch.equal(back['state_dict'][key], value), key
