"""The modules of the package as files, for the tests that read imports."""
import os
import os.path as osp
from typing import Dict

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def package_modules(package: str = 'mtl_pvt') -> Dict[str, str]:
    """Module name -> file, for every .py of ``package`` (a package's
    ``__init__.py`` under the package's own name)."""
    modules = {}
    for root, _, files in os.walk(osp.join(REPO, package)):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(root, name)
            parts = osp.relpath(path, REPO)[:-3].split(os.sep)
            if parts[-1] == '__init__':
                parts = parts[:-1]
            modules['.'.join(parts)] = path
    return modules
