"""Structure rules of issue 17: no import cycles inside ms_osr; nothing under ms_osr/models reads or writes
files (weights are loaded by ms_osr.build); every user-facing exception derives from MsOsrError."""
import ast
import inspect
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "ms_osr")


def _modules() -> dict:
    out = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def _imports(name: str, path: str, modules: dict) -> set:
    """ms_osr modules that ``name`` imports anywhere in its file (function bodies included)."""
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return comps


def test_no_import_cycles():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    assert _cycles(graph) == []


# calls and modules that touch the file system; models get arrays and cells, never paths
FILE_CALLS = {"open", "load", "save", "savez", "load_checkpoint", "save_checkpoint", "load_weights", "read_image",
              "write_image", "atomic_path", "atomic_write_text", "makedirs", "remove", "listdir", "glob"}
FILE_MODULES = {"checkpoint", "build", "fileio", "torch_io", "convert", "data.io", "weight_files", "config"}
FILE_LIBRARIES = {"os", "os.path", "glob", "shutil", "pickle", "yaml", "io"}


def _file_access(path: str) -> list:
    found = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Call):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if called in FILE_CALLS:
                found.append(f"line {node.lineno}: {called}()")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if (node.level == 2 and module in FILE_MODULES) or (node.level == 0 and module in FILE_LIBRARIES):
                found.append(f"line {node.lineno}: from {'.' * node.level}{module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name in FILE_LIBRARIES]
    return found


MODEL_FILES = sorted(os.path.join(PKG, "models", f)
                     for f in os.listdir(os.path.join(PKG, "models")) if f.endswith(".py"))


@pytest.mark.parametrize("path", MODEL_FILES, ids=os.path.basename)
def test_models_open_no_file(path):
    assert _file_access(path) == []


def test_the_file_check_sees_file_access(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom ..checkpoint import load_checkpoint\n\ndef f(net, p):\n"
                   "    load_checkpoint(net, p)\n    return open(p).read()\n")
    assert len(_file_access(str(bad))) == 4


def test_user_errors_share_one_base():
    from ms_osr.errors import MsOsrError

    modules = _modules()
    plain = []
    for name in sorted(modules):
        if name.startswith("ms_osr.audit"):  # issue 20's audit, in progress
            continue
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == name \
                    and not issubclass(obj, MsOsrError):
                plain.append(f"{name}.{attr}")
    assert plain == []
