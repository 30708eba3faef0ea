"""mtl_pvt's folders import one way: down the layers below.

A module may import from a lower layer, or from its own unit (a folder or
module of the table); never up, never sideways into another unit of its
layer. Every import counts, those inside functions too (an import moved
into a function to dodge a cycle still points where it points). The
package's face (``mtl_pvt/__init__.py``) and ``mtl_pvt.utils``' own
``__init__`` re-export and are left out as sources.
"""
import ast
import os.path as osp

from mtl_pvt.testing.imports import package_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'mtl_pvt'

# lowest first
LAYERS = [
    # what everything reads: registries, data structures, small helpers
    [
        'mtl_pvt.registry', 'mtl_pvt.structures', 'mtl_pvt.version',
        'mtl_pvt.utils.typing_utils', 'mtl_pvt.utils.randomness',
        'mtl_pvt.utils.schedules', 'mtl_pvt.utils.work_dirs',
        'mtl_pvt.utils.tool_args', 'mtl_pvt.utils.data_paths'
    ],
    # what a task is, how a result is scored, the demo data's generator
    ['mtl_pvt.tasks', 'mtl_pvt.evaluation', 'mtl_pvt.demo'],
    # the registered building blocks
    ['mtl_pvt.models', 'mtl_pvt.datasets'],
    # what reads models without training them: measurements, the
    # pre-flight check of a config
    ['mtl_pvt.analysis', 'mtl_pvt.utils.config_check'],
    # training: loops, hooks, optimiser wrappers, distributed set-up
    ['mtl_pvt.engine'],
    # registration of everything and building a config's model, for the
    # layers above (with the face of mtl_pvt.utils, which re-exports them
    # and the pre-flight check)
    ['mtl_pvt.utils'],
    # what works on checkpoints and finished runs
    ['mtl_pvt.converters', 'mtl_pvt.report'],
    # what a user calls: the Runner of mtl_pvt configs, the inferencer
    ['mtl_pvt.apis'],
    # studies: many runs and their report
    ['mtl_pvt.study'],
    # helpers of the tests and benchmarks
    ['mtl_pvt.testing'],
]
FACES = {'mtl_pvt', 'mtl_pvt.utils'}


def _modules():
    return package_modules(PACKAGE)


def _imports(module, path, modules):
    """(line, imported module) for every import of the package."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith('__init__.py')
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module
            if node.level:
                base = module.split('.')
                base = base[:len(base) - node.level + is_package]
                source = '.'.join(base +
                                  ([node.module] if node.module else []))
            # `from a.b import c`: the module a.b.c if there is one
            names = [
                f'{source}.{a.name}'
                if f'{source}.{a.name}' in modules else source
                for a in node.names
            ]
        else:
            continue
        for name in names:
            if name in modules:
                found.append((node.lineno, name))
    return found


def unit_of(module):
    """(layer, unit): the longest prefix of the table naming ``module``."""
    best = None
    for layer, units in enumerate(LAYERS):
        for unit in units:
            if (module == unit or module.startswith(unit + '.')) and (
                    best is None or len(unit) > len(best[1])):
                best = (layer, unit)
    return best


def violations(modules, imports):
    found = []
    for module, edges in imports.items():
        if module in FACES:
            continue
        source = unit_of(module)
        for line, target in edges:
            if module.startswith(target + '.'):
                continue  # a parent package: initialised first anyway
            dest = unit_of(target)
            if dest is None:
                found.append(f'{module}:{line} -> {target}: not in a layer')
            elif dest[0] > source[0] or (dest[0] == source[0]
                                         and dest[1] != source[1]):
                found.append(f'{module}:{line} ({source[1]}) -> {target} '
                             f'({dest[1]})')
    return found


def test_every_module_has_a_layer():
    modules = _modules()
    assert len(modules) > 100
    assert [m for m in modules if m not in FACES and unit_of(m) is None] == []


def test_imports_point_down():
    modules = _modules()
    imports = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert violations(modules, imports) == []


def test_an_upward_import_is_found():
    """The check itself: engine -> converters, and sideways tasks ->
    evaluation, are reported; models -> tasks is not."""
    modules = {'mtl_pvt.engine.hooks.x': '', 'mtl_pvt.converters.y': ''}
    imports = {
        'mtl_pvt.engine.hooks.x': [(3, 'mtl_pvt.converters.y')],
        'mtl_pvt.tasks.base': [(4, 'mtl_pvt.evaluation.delta_m')],
        'mtl_pvt.models.z': [(5, 'mtl_pvt.tasks.base')],
    }
    assert violations(modules, imports) == [
        'mtl_pvt.engine.hooks.x:3 (mtl_pvt.engine) -> mtl_pvt.converters.y '
        '(mtl_pvt.converters)',
        'mtl_pvt.tasks.base:4 (mtl_pvt.tasks) -> mtl_pvt.evaluation.delta_m '
        '(mtl_pvt.evaluation)'
    ]


def test_no_module_over_500_lines():
    """A module that grows past 500 lines holds more than one concern:
    split it by concern (as the optimiser wrapper, the inferencer and the
    reports were)."""
    long = {}
    for module, path in _modules().items():
        with open(path) as f:
            n = sum(1 for _ in f)
        if n > 500:
            long[module] = n
    assert long == {}
