"""Modules of an older commit, loaded from git next to the current ones.

For comparisons with the code before a rewrite (test_messages_vs_git.py, the tracker's and the
smoother's equivalence tests) and interleaved A/B timings (scripts/ab_messages.py): each module
is read with ``git show <commit>:pare_ros/<path>.py`` and executed inside a separate package
``_pare_at_<commit>`` (so that its relative imports resolve among the loaded modules, never to
the working tree's pare_ros). A module already loaded from that commit is reused.
"""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]

#: The message path's modules, in import order (each only imports earlier ones).
MESSAGE_MODULES = ("constants", "tf_tree", "world_frame", "ros.message_builders", "ros.cdr", "ros.tf_message",
                   "ros.tf_frames", "ros.body_messages", "ros.body_array")


def load(commit: str, modules: Sequence[str] = MESSAGE_MODULES) -> types.SimpleNamespace:
    """``modules`` (dotted paths below pare_ros, in import order) at ``commit``, as attributes
    named by their last part (``.tf_frames``, ``.kalman``, ...). Raises RuntimeError when git or
    the commit is not available."""
    root = f"_pare_at_{commit}"
    sources = {}
    for name in modules:
        if f"{root}.{name}" in sys.modules:
            continue
        path = "pare_ros/" + name.replace(".", "/") + ".py"
        try:
            sources[name] = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path}"], check=True,
                                           capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RuntimeError(f"cannot read {path} at {commit}: {exc}") from None
    for name in modules:
        parts = f"{root}.{name}".split(".")
        for depth in range(1, len(parts)):                   # the packages above it
            package = ".".join(parts[:depth])
            if package not in sys.modules:
                module = types.ModuleType(package)
                module.__path__ = []
                sys.modules[package] = module
        full = ".".join(parts)
        if full not in sys.modules:
            module = types.ModuleType(full)
            module.__package__ = full.rpartition(".")[0]
            module.__file__ = f"<{commit}:{name}>"
            sys.modules[full] = module
            try:
                exec(compile(sources[name], module.__file__, "exec"), module.__dict__)
            except BaseException:
                del sys.modules[full]
                raise
    return types.SimpleNamespace(**{name.rpartition(".")[2]: sys.modules[f"{root}.{name}"] for name in modules})
