"""The procedural demo data sets (ImageNet, COCO and ADE20K layouts) that
the demo configs, the demo study and the tests train on."""
from .data import (ADE20K_LABEL_VALUES, DEMO_CLASSES, DEMO_SEG_CLASSES,
                   MANIFEST_NAME, demo_object_image, demo_scene,
                   make_demo_data, mask_to_bbox, mask_to_rle,
                   read_demo_manifest)

__all__ = [
    'ADE20K_LABEL_VALUES', 'DEMO_CLASSES', 'DEMO_SEG_CLASSES', 'MANIFEST_NAME',
    'demo_object_image', 'demo_scene', 'make_demo_data', 'mask_to_bbox',
    'mask_to_rle', 'read_demo_manifest'
]
