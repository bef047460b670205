"""The repository's scripts (scripts/*.py) and launch files as modules, for tests of their parts."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_file(path: Path, name: str) -> ModuleType:
    """Execute ``path`` as a fresh module called ``name`` (not registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_script(stem: str) -> ModuleType:
    """scripts/<stem>.py as a module named ``pare_script_<stem>``."""
    return load_file(REPO / "scripts" / f"{stem}.py", f"pare_script_{stem}")
