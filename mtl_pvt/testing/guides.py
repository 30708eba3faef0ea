"""The code of a developer guide (docs/developer/), as a module."""
import importlib.util
import os.path as osp
import re
from types import ModuleType

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def guide_module(name: str, tmp_dir: str) -> ModuleType:
    """Import the first ``python`` block of ``docs/developer/<name>.md``,
    written into ``tmp_dir``, as a module (a guide whose code stops
    working fails where this is called)."""
    with open(osp.join(REPO, 'docs', 'developer', name + '.md')) as f:
        code = re.search(r'```python\n(.*?)```', f.read(), re.S).group(1)
    path = osp.join(str(tmp_dir), f'guide_{name}.py')
    with open(path, 'w') as f:
        f.write(code)
    spec = importlib.util.spec_from_file_location(f'guide_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
