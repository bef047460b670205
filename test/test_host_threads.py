"""host_threads: the node limits torch's CPU pool and NumPy's BLAS to ``host_threads`` threads,
except torch's pool when the network itself runs through torch on the CPU.

The settings are process-wide, so each case runs in a fresh interpreter (the test process keeps
its own); each asserts the counts the libraries report afterwards against the defaults they
reported before."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BEFORE_AND_AFTER = """
import json, sys, torch, cv2
from threadpoolctl import threadpool_info, threadpool_limits
sys.path.insert(0, {repo!r})
# Three threads to start from, so that a limit is visible whatever the machine's core count.
torch.set_num_threads(3)
threadpool_limits(limits=3, user_api="blas")
def counts():
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return dict(torch=torch.get_num_threads(), opencv=cv2.getNumThreads(), blas=max(blas) if blas else None)
before = counts()
{body}
print(json.dumps(dict(before=before, after=counts(), result=result)))
"""


def run_isolated(body: str) -> dict:
    script = BEFORE_AND_AFTER.format(repo=str(REPO), body=textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_thread_for_torch_and_blas_opencv_untouched():
    out = run_isolated("""
        from pare_ros.host_threads import limit_host_threads
        result = limit_host_threads(1).describe()
    """)
    assert out["before"]["torch"] == 3
    assert out["after"]["torch"] == 1
    if out["before"]["blas"] is not None:
        assert out["before"]["blas"] == 3 and out["after"]["blas"] == 1
    assert out["after"]["opencv"] == out["before"]["opencv"]
    assert out["result"].startswith("torch 1, OpenCV ")


def test_zero_changes_nothing():
    out = run_isolated("""
        from pare_ros.host_threads import limit_host_threads
        result = limit_host_threads(0).describe()
    """)
    assert out["after"] == out["before"]


def test_torch_network_on_the_cpu_keeps_torch_pool():
    out = run_isolated("""
        from pare_ros.host_threads import limit_host_threads
        result = limit_host_threads(2, torch_runs_network_on_cpu=True).describe()
    """)
    assert out["after"]["torch"] == out["before"]["torch"] == 3
    if out["before"]["blas"] is not None:
        assert out["after"]["blas"] == 2


def test_negative_is_refused():
    from pare_ros.host_threads import limit_host_threads

    with pytest.raises(ValueError, match="threads must be ≥ 0"):
        limit_host_threads(-1)


def test_node_factory_applies_the_parameter_and_reports_it():
    """build_processor (the node's configure and process_bag) with backend torch-cpu: BLAS
    limited, torch's pool left to the network; the banner names the counts."""
    pytest.importorskip("rclpy")
    out = run_isolated("""
        from pare_ros.ros.param_file import ParamSource
        from pare_ros.ros.pipeline_factory import build_processor
        from pare_ros.ros.process_bag import settings_from
        params = ParamSource(overrides={"model.allow_untrained": True, "backend": "torch-cpu",
                                        "detector.kind": "fixed", "host_threads": 1})
        processor, label, report = build_processor(params, settings_from(params))
        result = dict(report=report.host_threads, banner=report.banner())
    """)
    assert out["after"]["torch"] == 3
    if out["before"]["blas"] is not None:
        assert out["after"]["blas"] == 1
    assert out["result"]["report"].startswith("torch 3, OpenCV ")
    assert "host threads: torch 3" in out["result"]["banner"]


def test_torch_network_detection():
    import torch

    from pare_ros.backends.torch_backend import TorchBackend
    from pare_ros.benchmarking.null_network import NullNetwork
    from pare_ros.ros.pipeline_factory import _torch_network_on_cpu

    assert _torch_network_on_cpu(TorchBackend(torch.nn.Identity(), device="cpu"))
    assert not _torch_network_on_cpu(NullNetwork(1, "cpu"))
