"""Install mtl_pvt: multi-task learning on PVT v2 for the OpenMMLab stack."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    """Read ``__version__`` without importing the package (and torch)."""
    scope = {}
    with open(osp.join(HERE, 'mtl_pvt', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt`` without comments."""
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='mtl_pvt',
    version=read_version(),
    description='Multi-task learning with a shared PVT v2 backbone '
    '(classification, detection, segmentation) on MMEngine',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mtl_pvt', 'mtl_pvt.*']),
    python_requires='>=3.9',
    # Ranges, not pins: `requirements/*.txt` hold the pinned stack that
    # `make install` builds. mmdet 3.3 and mmseg 1.2 reject mmcv >= 2.2.
    install_requires=[
        'torch>=2.0',
        'torchvision',
        'mmengine>=0.10.4,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.3.0,<3.4.0',
        'mmsegmentation>=1.2.2,<1.3.0',
        'mmpretrain>=1.2.0,<1.3.0',
        'ftfy',
        'regex',
    ],
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache License 2.0',
    zip_safe=False,
)
