"""Load the top-level scripts (test.py, train.py, tools/*.py) as modules, to call their ``main(argv)`` in-process
(a MindSpore process start costs seconds)."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(relpath: str, name: str = ""):
    """The script at ``ROOT/relpath`` as a fresh module (each call re-executes it)."""
    mod_name = name or "ms_osr_script_" + relpath.replace("/", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(mod_name, os.path.join(ROOT, relpath))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
