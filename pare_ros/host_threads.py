"""How many threads the per-frame host work gets from torch's intra-op pool and NumPy's BLAS.

The host side of a frame (crops, SMPL's skeleton and mesh, smoothing, messages) is hundreds of
small operations on arrays of a few kilobytes, plus a few memory-bound products. Splitting them
over threads saves nothing, and the idle workers of torch's OpenMP pool and of OpenBLAS
spin-wait between calls: on a robot whose cores also run the camera driver, the ROS executor and
the network's own pool, they take the cores from the thread that does the work. Measured on a
2-core machine, 8 people, zero-cost network (docs/benchmarks.md, "Host threads"): the libraries'
defaults 25.7 ms p50 / 64 ms p95 per frame, this module's limits 16.7 / 18.3 ms; limiting either
of the two spinners alone gave most of it, limiting OpenCV alone almost nothing.

So the node gives torch's pool and the BLAS ``threads`` (default 1) when it starts. OpenCV's pool
keeps its size: its workers sleep between calls, and the HOG detector (the default without a
YOLO file) runs 2× faster on two threads than on one. The network keeps its own pool: ONNX
Runtime's (``onnxruntime_backend``) and the GPU's are separate from these; only a network that
runs through torch on the CPU (backend ``torch-cpu``) shares torch's pool, and then that pool is
left as it is (the network, ~170 ms a person there, needs every core).

Process-wide settings, made once by whoever owns the process (the node's ``configure``, a
benchmark's ``main``); the library modules never call this themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class HostThreads:
    """The thread counts in force after :func:`limit_host_threads` (None: the library is absent)."""

    torch: int
    opencv: Optional[int]
    blas: Optional[int]

    def describe(self) -> str:
        def count(n: Optional[int]) -> str:
            return "absent" if n is None else str(n)

        return f"torch {self.torch}, OpenCV {count(self.opencv)}, BLAS {count(self.blas)}"


def limit_host_threads(threads: int, torch_runs_network_on_cpu: bool = False) -> HostThreads:
    """Give torch's intra-op pool and NumPy's BLAS ``threads`` threads each.

    Args:
        threads: ≥ 1; 0 leaves every library at its own default (and changes nothing).
        torch_runs_network_on_cpu: the network runs through torch on the CPU, in torch's pool:
            that pool keeps its size (the BLAS is still limited).

    Returns:
        the counts in force afterwards (OpenCV's, unchanged, for the record).

    Raises:
        ValueError: ``threads`` < 0.
    """
    import torch

    if threads < 0:
        raise ValueError(f"threads must be ≥ 0 (0 = the libraries' defaults), got {threads}")
    if threads and not torch_runs_network_on_cpu:
        torch.set_num_threads(threads)
    blas = _limit_blas(threads)
    return HostThreads(torch=torch.get_num_threads(), opencv=_opencv_threads(), blas=blas)


def _opencv_threads() -> Optional[int]:
    try:
        import cv2
    except ImportError:
        return None
    return cv2.getNumThreads()


def _limit_blas(threads: int) -> Optional[int]:
    """NumPy's BLAS (OpenBLAS in NumPy's wheels) through threadpoolctl, which sets it in the
    loaded library (the environment variables are read only when it loads)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    controller = ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        return None
    if threads:
        controller.limit(limits=threads)
    return max(lib.num_threads for lib in controller.lib_controllers)
