"""TensorRT engines for PARE: building, caching with a JSON sidecar, and running.

* :func:`build_engine` parses the exported ONNX model (:mod:`pare_ros.backends.onnx_export`)
  with ``OnnxParser`` and builds a serialized engine (FP16 or FP32) with one optimisation
  profile for the ``images`` input (batch ``1 .. max_batch``, optimum ``opt_batch``), a
  workspace limit and a persistent timing cache file (so rebuilds take seconds, not minutes).
  Next to the engine it writes ``<engine>.json``: the ONNX sha256, TensorRT version, GPU name
  and compute capability, precision, profile and the binding names/shapes/dtypes.
* :class:`EngineCache` decides whether an engine on disk may be reused: only when its sidecar
  matches the current ONNX file's hash, this GPU (name, compute capability), this TensorRT
  version, the requested precision and the requested profile, and the engine file itself is
  the one the sidecar describes. Otherwise it rebuilds when the policy allows
  (``policy="auto"`` or ``force_rebuild=True``), or raises :class:`EngineNotReadyError` whose
  message gives the exact build command.
* :class:`TensorRTBackend` runs an engine with torch CUDA tensors as the I/O buffers on torch's
  current stream, and checks the engine's bindings against the backend contract at load.

``import tensorrt`` happens only inside functions, so this module imports without TensorRT.
TensorRT cannot be installed in this project's CI/development environment (no GPU; the PyPI
packages are download stubs), so the code that calls TensorRT is written against its documented
Python API (TensorRT 10 and 11 — FP16 differs, see :mod:`.trt_precision`:
``build_serialized_network``, ``set_memory_pool_limit``,
``create_timing_cache``, ``num_io_tensors``/``get_tensor_*``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) and the caching / validation logic around it is
tested with fake builders and environments (test/test_backends.py).

Command line::

    python -m pare_ros.backends.tensorrt_engine build --onnx model/onnx/pare_hrnet_w32.onnx \
        --out model/tensorrt/pare_hrnet_w32.fp16.engine --precision fp16 --max-batch 8
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from .contract import INPUT_NAME, INPUT_SHAPE, OUTPUT_NAMES, check_io, run_in_chunks
from .trt_precision import (FP16ConversionError, Fp16Converter, autocast_fp16_onnx, fp16_method,
                            has_fp16_builder_flag, platform_has_fast_fp16)
from ..model_files import sha256_file

SIDECAR_VERSION = 1


class TensorRTUnavailable(RuntimeError):
    """TensorRT (or a CUDA GPU) is not available here."""


ENGINE_POLICIES = ("never", "auto", "force")


class EngineNotReadyError(RuntimeError):
    """No engine usable on this machine, and the policy forbids building one."""


class EngineBuildError(RuntimeError):
    """TensorRT failed to parse the ONNX model or to build the engine."""


@dataclass(frozen=True)
class BuildSpec:
    """What an engine is built for: precision and the ``images`` optimisation profile."""

    precision: str = "fp16"             # "fp16" | "fp32"
    max_batch: int = 8
    opt_batch: Optional[int] = None     # default max(1, max_batch // 2)
    min_batch: int = 1
    workspace_gb: float = 2.0

    def __post_init__(self):
        if self.precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be 'fp16' or 'fp32', not {self.precision!r}")
        if not 1 <= self.min_batch <= self.optimum <= self.max_batch:
            raise ValueError(f"need 1 <= min_batch <= opt_batch <= max_batch, got "
                             f"{self.min_batch}, {self.optimum}, {self.max_batch}")

    @property
    def optimum(self) -> int:
        return self.opt_batch if self.opt_batch is not None else max(1, self.max_batch // 2)

    def profile(self) -> Dict[str, List[int]]:
        return {key: [n, *INPUT_SHAPE] for key, n in
                (("min", self.min_batch), ("opt", self.optimum), ("max", self.max_batch))}


def build_command(onnx_path: str | Path, engine_path: str | Path, spec: BuildSpec) -> str:
    """The shell command that builds the engine ``spec`` describes."""
    cmd = (f"python -m pare_ros.backends.tensorrt_engine build --onnx {onnx_path} --out {engine_path} "
           f"--precision {spec.precision} --max-batch {spec.max_batch}")
    if spec.opt_batch is not None:
        cmd += f" --opt-batch {spec.opt_batch}"
    if spec.min_batch != 1:
        cmd += f" --min-batch {spec.min_batch}"
    return cmd


def current_environment(device: int | None = None) -> Dict[str, str]:
    """TensorRT version, GPU name and compute capability of this machine.

    Raises :class:`TensorRTUnavailable` without TensorRT or a CUDA device."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(f"TensorRT is not installed ({exc})") from exc
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("no CUDA device (torch.cuda.is_available() is False)")
    device = torch.cuda.current_device() if device is None else device
    major, minor = torch.cuda.get_device_capability(device)
    return {"tensorrt_version": trt.__version__, "gpu_name": torch.cuda.get_device_name(device),
            "compute_capability": f"{major}.{minor}"}


def sidecar_path(engine_path: str | Path) -> Path:
    return Path(str(engine_path) + ".json")


def _trt_logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


def _engine_bindings(engine) -> List[Dict[str, object]]:
    import tensorrt as trt

    bindings = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = engine.get_tensor_mode(name)
        bindings.append({
            "name": name,
            "mode": "input" if mode == trt.TensorIOMode.INPUT else "output",
            "shape": [int(d) for d in engine.get_tensor_shape(name)],
            "dtype": str(engine.get_tensor_dtype(name)).split(".")[-1].lower(),
        })
    return bindings


def _check_bindings(source: str, bindings: List[Dict[str, object]]) -> None:
    check_io(source, {b["name"]: b["shape"] for b in bindings if b["mode"] == "input"},
             {b["name"]: b["shape"] for b in bindings if b["mode"] == "output"})


def tensorrt_builder(onnx_path: Path, engine_path: Path, spec: BuildSpec,
                     timing_cache: Optional[Path] = None,
                     fp16_converter: Fp16Converter = autocast_fp16_onnx) -> List[Dict[str, object]]:
    """Build and write the engine with TensorRT; return its binding descriptions.

    FP16 on TensorRT 10 sets ``BuilderFlag.FP16``; on TensorRT ≥ 11 (strong typing only) the
    network is parsed from ``fp16_converter``'s mixed-precision copy of the model instead
    (:mod:`.trt_precision`)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(f"TensorRT is not installed ({exc})") from exc
    logger = _trt_logger()
    builder = trt.Builder(logger)
    weak_fp16 = spec.precision == "fp16" and has_fp16_builder_flag(trt)
    source = Path(onnx_path)
    if spec.precision == "fp16" and not weak_fp16:
        try:
            source = fp16_converter(source, Path(engine_path).parent)
        except FP16ConversionError as exc:
            raise EngineBuildError(str(exc)) from exc
    network = builder.create_network(0)          # TensorRT ≥ 10: always explicit batch
    parser = trt.OnnxParser(network, logger)
    # From the file, not bytes: the parser then finds external weights next to it.
    if not parser.parse_from_file(str(source)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {source}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(spec.workspace_gb * (1 << 30)))
    if spec.precision == "fp16" and not platform_has_fast_fp16(builder):
        print("warning: this GPU has no fast FP16; building FP16 anyway", file=sys.stderr)
    if weak_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shapes = spec.profile()
    profile.set_shape(INPUT_NAME, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    data = bytes(serialized)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(data)
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    engine = trt.Runtime(logger).deserialize_cuda_engine(data)
    return _engine_bindings(engine)


Builder = Callable[..., List[Dict[str, object]]]


def build_engine(onnx_path: str | Path, engine_path: str | Path, spec: BuildSpec = BuildSpec(),
                 timing_cache: str | Path | None = None, builder: Optional[Builder] = None,
                 environment: Optional[Callable[[], Dict[str, str]]] = None) -> Dict[str, object]:
    """Build ``engine_path`` from ``onnx_path`` and write its sidecar; return the sidecar.

    ``builder``/``environment`` default to TensorRT and :func:`current_environment` (tests
    inject fakes)."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_path}; export it with "
                                f"`python -m pare_ros.backends.onnx_export --out {onnx_path}`")
    env = (environment or current_environment)()
    timing_cache = Path(timing_cache) if timing_cache else engine_path.parent / "timing.cache"
    started = time.time()
    bindings = (builder or tensorrt_builder)(onnx_path, engine_path, spec, timing_cache)
    _check_bindings(str(engine_path), bindings)
    sidecar = {
        "sidecar_version": SIDECAR_VERSION,
        "onnx_path": str(onnx_path),
        "onnx_sha256": sha256_file(onnx_path),
        "engine_sha256": sha256_file(engine_path),
        **env,
        "precision": spec.precision,
        "fp16_method": fp16_method(env["tensorrt_version"]) if spec.precision == "fp16" else None,
        "profile": spec.profile(),
        "workspace_gb": spec.workspace_gb,
        "bindings": bindings,
        "build_seconds": round(time.time() - started, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    sidecar_path(engine_path).write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


class EngineCache:
    """Reuse a built engine only when it is valid for this ONNX file, GPU, TensorRT and spec.

    Args:
        onnx_path: the exported model the engine must come from.
        engine_path: where the engine lives (sidecar: ``<engine_path>.json``).
        spec: precision and profile wanted.
        policy: ``"auto"`` rebuilds a missing/stale engine; ``"never"`` raises
            :class:`EngineNotReadyError` with the build command instead; ``"force"`` rebuilds
            even a reusable one (e.g. after a TensorRT or driver update the sidecar cannot see).
        builder, environment: injectable for tests (default: TensorRT, :func:`current_environment`).
    """

    def __init__(self, onnx_path: str | Path, engine_path: str | Path, spec: BuildSpec = BuildSpec(),
                 policy: str = "auto", timing_cache: str | Path | None = None,
                 builder: Optional[Builder] = None,
                 environment: Optional[Callable[[], Dict[str, str]]] = None) -> None:
        if policy not in ENGINE_POLICIES:
            raise ValueError(f"policy must be one of {ENGINE_POLICIES}, not {policy!r}")
        self.onnx_path, self.engine_path = Path(onnx_path), Path(engine_path)
        self.spec, self.policy, self.timing_cache = spec, policy, timing_cache
        self.builder, self.environment = builder, environment or current_environment
        self.last_action = ""      # "reused" | "built", with last_reason

    def stale_reasons(self) -> List[str]:
        """Why the engine on disk cannot be reused (empty list: reusable)."""
        if not self.engine_path.is_file():
            return [f"no engine at {self.engine_path}"]
        side = sidecar_path(self.engine_path)
        if not side.is_file():
            return [f"no sidecar {side} describing the engine"]
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError) as exc:
            return [f"unreadable sidecar {side}: {exc}"]
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.onnx_path}")
        env = self.environment()
        wanted = {"onnx_sha256": sha256_file(self.onnx_path), **env,
                  "precision": self.spec.precision, "profile": self.spec.profile()}
        reasons = [f"{key}: engine has {meta.get(key)!r}, need {value!r}"
                   for key, value in wanted.items() if meta.get(key) != value]
        if meta.get("engine_sha256") != sha256_file(self.engine_path):
            reasons.append("engine file does not match the sha256 in its sidecar (modified or truncated)")
        return reasons

    def ensure(self, force_rebuild: bool = False) -> Path:
        """Return a usable engine path, building it if needed and allowed."""
        force_rebuild = force_rebuild or self.policy == "force"
        reasons = ["rebuild forced"] if force_rebuild else self.stale_reasons()
        if not reasons:
            self.last_action, self.last_reason = "reused", "sidecar matches ONNX, GPU, TensorRT, precision and profile"
            return self.engine_path
        if self.policy == "never" and not force_rebuild:
            raise EngineNotReadyError(
                f"TensorRT engine {self.engine_path} cannot be used: " + "; ".join(reasons)
                + f". Build it with: {build_command(self.onnx_path, self.engine_path, self.spec)}")
        build_engine(self.onnx_path, self.engine_path, self.spec, self.timing_cache,
                     builder=self.builder, environment=self.environment)
        self.last_action, self.last_reason = "built", "; ".join(reasons)
        return self.engine_path


_TORCH_DTYPES = {"float": torch.float32, "float32": torch.float32, "half": torch.float16,
                 "float16": torch.float16}


class TensorRTBackend:
    """Run a PARE TensorRT engine; torch CUDA tensors in and out (the estimator's contract).

    I/O buffers are torch tensors (``set_tensor_address(name, tensor.data_ptr())``) and the
    engine is enqueued on ``torch.cuda.current_stream()``, so no synchronisation with torch
    is needed. Batches above the profile maximum are run in chunks.
    """

    def __init__(self, engine_path: str | Path, device: int | None = None) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise TensorRTUnavailable(f"TensorRT is not installed ({exc})") from exc
        if not torch.cuda.is_available():
            raise TensorRTUnavailable("TensorRT needs a CUDA device")
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TensorRT engine not found: {self.path}; build it with "
                                    "`python -m pare_ros.backends.tensorrt_engine build ...`")
        self.device = torch.device("cuda", torch.cuda.current_device() if device is None else device)
        self._logger = _trt_logger()
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise EngineBuildError(f"TensorRT could not deserialize {self.path} (built for another "
                                   "TensorRT version or GPU? rebuild it)")
        self.bindings = _engine_bindings(self.engine)
        _check_bindings(str(self.path), self.bindings)
        self.dtypes = {b["name"]: _TORCH_DTYPES.get(b["dtype"], torch.float32) for b in self.bindings}
        self.max_batch = int(self.engine.get_tensor_profile_shape(INPUT_NAME, 0)[2][0])
        self.context = self.engine.create_execution_context()
        self.name = f"tensorrt ({self.path.name}, max batch {self.max_batch})"

    def _run(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        n = images.shape[0]
        images = images.to(self.device, self.dtypes[INPUT_NAME]).contiguous()
        self.context.set_input_shape(INPUT_NAME, tuple(images.shape))
        self.context.set_tensor_address(INPUT_NAME, images.data_ptr())
        outputs = {}
        for name in OUTPUT_NAMES:
            shape = tuple(self.context.get_tensor_shape(name))
            outputs[name] = torch.empty((n, *shape[1:]), dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution failed for batch {n}")
        images.record_stream(stream)
        return {name: value.float() for name, value in outputs.items()}

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if images.ndim != 4 or tuple(images.shape[1:]) != INPUT_SHAPE:
            raise ValueError(f"expected images [N,{','.join(map(str, INPUT_SHAPE))}], got {list(images.shape)}")
        return run_in_chunks(self._run, images, self.max_batch)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pare_ros.backends.tensorrt_engine",
                                     description="Build TensorRT engines for PARE.")
    # Options that define an engine, shared by both sub-commands.
    spec_args = argparse.ArgumentParser(add_help=False)
    spec_args.add_argument("--onnx", type=Path, required=True)
    spec_args.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    spec_args.add_argument("--max-batch", type=int, default=8)
    spec_args.add_argument("--opt-batch", type=int, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", parents=[spec_args], help="ONNX → TensorRT engine + JSON sidecar")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--min-batch", type=int, default=1)
    build.add_argument("--workspace-gb", type=float, default=2.0)
    build.add_argument("--timing-cache", type=Path, default=None,
                       help="timing cache file (default: timing.cache next to the engine)")
    check = sub.add_parser("check", parents=[spec_args], help="say whether an engine can be reused here")
    check.add_argument("--engine", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            spec = BuildSpec(args.precision, args.max_batch, args.opt_batch, args.min_batch, args.workspace_gb)
            sidecar = build_engine(args.onnx, args.out, spec, args.timing_cache)
            print(f"wrote {args.out} and {sidecar_path(args.out)} ({sidecar['build_seconds']} s, "
                  f"TensorRT {sidecar['tensorrt_version']}, {sidecar['gpu_name']})")
            return 0
        spec = BuildSpec(args.precision, args.max_batch, args.opt_batch)
        reasons = EngineCache(args.onnx, args.engine, spec, policy="never").stale_reasons()
        print("reusable" if not reasons else "stale: " + "; ".join(reasons))
        return 0 if not reasons else 1
    except (TensorRTUnavailable, EngineBuildError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
