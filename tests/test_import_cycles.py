"""No import cycle among mtl_pvt's modules.

A module's import-time imports (its top level, ``if``/``try`` blocks
included; not those inside functions, which run on first use) form a
graph over the modules of the package, an import of ``a.b.c`` an edge to
``a.b`` and ``a.b.c`` (Python runs the packages' ``__init__`` first); it
must have no cycle. An import of a module's own parent package is left
out: Python initialises the parents first, so it cannot close a cycle of
its own.
"""
import ast
import os.path as osp

from mtl_pvt.testing.imports import package_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = 'mtl_pvt'


def _modules():
    return package_modules(PACKAGE)


def _top_level(body):
    """The statements run at import time (into if/try, not defs)."""
    for node in body:
        if isinstance(node,
                      (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield node
        if isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody,
                          *(h.body for h in node.handlers)):
                yield from _top_level(block)


def _imports(module, path, modules):
    """The package modules that ``module`` imports at import time."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith('__init__.py')
    targets = set()
    for node in _top_level(tree.body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split('.')
                base = base[:len(base) - node.level + is_package]
                source = '.'.join(base +
                                  ([node.module] if node.module else []))
            else:
                source = node.module
            names = [source] + [f'{source}.{a.name}' for a in node.names]
        else:
            continue
        for name in names:
            if name in modules:
                # importing a.b.c runs a/__init__ and a/b/__init__ first
                parts = name.split('.')
                targets.update('.'.join(parts[:i])
                               for i in range(2,
                                              len(parts) + 1))
    # a module's own parents are initialised before it
    return {t for t in targets if not module.startswith(t + '.')} - {module}


def _cycles(graph):
    """The strongly connected components of more than one module
    (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert len(graph) > 100  # the walk found the package
    assert _cycles(graph) == []


def test_a_cycle_is_found(tmp_path):
    """The check itself: two modules importing each other are a cycle."""
    graph = dict(a={'b'}, b={'c'}, c={'a'}, d={'a'})
    assert _cycles(graph) == [['a', 'b', 'c']]
