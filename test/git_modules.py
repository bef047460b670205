"""The message writers of an older commit, loaded from git next to the current ones.

For byte-for-byte comparisons (test_messages_vs_git.py) and interleaved A/B timings
(scripts/ab_messages.py): the modules below are read with ``git show <commit>:<path>`` and
executed as a separate package ``_pare_at_<commit>`` (so their relative imports resolve among
themselves, not to the working tree's pare_ros).
"""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Modules of the message path, in import order (each only imports earlier ones).
MODULES = ("constants", "tf_tree", "world_frame", "ros.message_builders", "ros.cdr", "ros.tf_message",
           "ros.tf_frames", "ros.body_messages", "ros.body_array")


def load(commit: str) -> types.SimpleNamespace:
    """The MODULES at ``commit`` as attributes (``.tf_frames``, ``.body_array``, ...).
    Raises RuntimeError when git or the commit is not available."""
    root = f"_pare_at_{commit}"
    if root in sys.modules:
        return sys.modules[root]._loaded
    sources = {}
    for name in MODULES:
        path = "pare_ros/" + name.replace(".", "/") + ".py"
        try:
            sources[name] = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path}"], check=True,
                                           capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RuntimeError(f"cannot read {path} at {commit}: {exc}") from None
    for package in (root, root + ".ros"):
        module = types.ModuleType(package)
        module.__path__ = []
        sys.modules[package] = module
    loaded = types.SimpleNamespace()
    for name, source in sources.items():
        full = f"{root}.{name}"
        module = types.ModuleType(full)
        module.__package__ = full.rpartition(".")[0]
        module.__file__ = f"<{commit}:{name}>"
        sys.modules[full] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        setattr(loaded, name.rpartition(".")[2], module)
    sys.modules[root]._loaded = loaded
    return loaded
