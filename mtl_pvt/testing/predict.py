"""Predictions of a multi-task model through its config's test pipelines."""
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope


def mtl_predict(model, cfg, images):
    """Predictions of a MultiTaskModel on one image per task, through each
    task's test pipeline of the MTL config."""
    inputs, samples = [], []
    with DefaultScope.overwrite_default_scope('mtl_pvt'):
        for task, path in images.items():
            pipeline = [
                t for t in cfg.test_dataloader[task].dataset.pipeline
                if not t['type'].endswith('LoadAnnotations')
            ]
            data = Compose(pipeline)(dict(img_path=path, img_id=0))
            data['data_samples'].set_metainfo(dict(task=task))
            inputs.append(data['inputs'])
            samples.append(data['data_samples'])
    model.eval()
    with torch.no_grad():
        results = model.test_step(dict(inputs=inputs, data_samples=samples))
    return dict(zip(images, results))
