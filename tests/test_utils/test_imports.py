"""What importing the package pulls in."""
import os
import os.path as osp
import re
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_package_import_does_not_load_the_runner():
    code = ('import sys, mtl_pvt, mtl_pvt.utils, mtl_pvt.structures, '
            'mtl_pvt.demo; '
            "print(sorted(m for m in sys.modules "
            "if m.startswith('mmengine.runner')))")
    out = subprocess.run([sys.executable, '-c', code],
                         cwd=REPO,
                         capture_output=True,
                         text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == '[]'


def test_models_do_not_import_the_runner_themselves():
    """``mtl_pvt.models`` gets ``mmengine.runner`` only through mmcv (its
    ``cnn`` package imports ``load_checkpoint``), never from its own
    modules, nor through ``mtl_pvt.engine`` (the tools' argument handling
    ``engine.cli`` and distributed set-up ``engine.model_wrappers``)."""
    pattern = re.compile(
        r'^\s*(from|import) (mmengine\.runner|mtl_pvt\.engine)\b', re.M)
    for root, _, files in os.walk(osp.join(REPO, 'mtl_pvt', 'models')):
        for name in files:
            if name.endswith('.py'):
                with open(osp.join(root, name)) as f:
                    found = pattern.findall(f.read())
                assert not found, (name, found)
