"""The TensorRT build path (``tensorrt_builder`` + ``build_engine``) against a fake ``tensorrt``
module, in its TensorRT 10 (FP16 builder flag) and TensorRT 11 (strong typing only) shapes.

TensorRT cannot be installed here (no GPU; the PyPI packages are download stubs), so the module
below is a stand-in written from TensorRT's Python API documentation. It records the calls the
builder makes, which is what these tests check: FP16 requested the way each version allows,
the optimisation profile, workspace, timing cache round trip, the model file parsed, and the
sidecar. Whether the real TensorRT accepts them is only checked on a machine that has it.
"""
from __future__ import annotations

import json
import sys
import types

import pytest

from pare_ros.backends import contract
from pare_ros.backends import tensorrt_engine as trt_mod
from pare_ros.backends import trt_precision
from pare_ros.backends.trt_precision import STRONG_TYPING, WEAK_TYPING

BINDINGS = [("images", True, (-1, 3, 224, 224))] + [
    (name, False, (-1, *shape)) for name, shape in contract.OUTPUT_SHAPES.items()]


def fake_tensorrt(version: str, calls: list) -> types.ModuleType:
    """A ``tensorrt`` module with the API surface the builder uses (TensorRT ``version``)."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    major = int(version.split(".")[0])

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class IOMode:
        INPUT, OUTPUT = "input", "output"

    class DataType:
        FLOAT = "float"

        def __init__(self):
            pass

    class Flag:
        pass

    if major <= 10:
        Flag.FP16 = "FP16"                    # removed in TensorRT 11 (strong typing only)

    class Cache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return memoryview(self.data + b"+tuned")

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.cache = [], [], None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("pool", pool, size))

        def set_flag(self, flag):
            calls.append(("flag", flag))

        def add_optimization_profile(self, profile):
            calls.append(("profile", dict(profile.shapes)))

        def create_timing_cache(self, data):
            calls.append(("timing_cache_in", bytes(data)))
            return Cache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self.shapes[name] = (list(lo), list(opt), list(hi))

    class Network:
        pass

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("network_flags", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            return memoryview(b"serialized engine")

    if major <= 10:
        Builder.platform_has_fast_fp16 = True

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls.append(("parse", path))
            return True

    class Engine:
        num_io_tensors = len(BINDINGS)

        def get_tensor_name(self, i):
            return BINDINGS[i][0]

        def get_tensor_mode(self, name):
            return IOMode.INPUT if dict((n, i) for n, i, _ in BINDINGS)[name] else IOMode.OUTPUT

        def get_tensor_shape(self, name):
            return dict((n, s) for n, _, s in BINDINGS)[name]

        def get_tensor_dtype(self, name):
            return "DataType.FLOAT"

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            assert bytes(data) == b"serialized engine"
            return Engine()

    trt.Logger, trt.TensorIOMode, trt.DataType, trt.BuilderFlag = Logger, IOMode, DataType, Flag
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "pare.onnx"
    path.write_bytes(b"float32 onnx")
    return path


def _build(monkeypatch, tmp_path, onnx_file, version, precision, converter=None):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version, calls))
    engine = tmp_path / "engines" / f"pare.{precision}.engine"
    cache = tmp_path / "engines" / "timing.cache"
    cache.parent.mkdir()
    cache.write_bytes(b"old timings")
    env = {"tensorrt_version": version, "gpu_name": "NVIDIA Fake GPU", "compute_capability": "9.0"}
    builder = trt_mod.tensorrt_builder
    if converter is not None:
        builder = lambda *a: trt_mod.tensorrt_builder(*a, fp16_converter=converter)  # noqa: E731
    sidecar = trt_mod.build_engine(onnx_file, engine, trt_mod.BuildSpec(precision, max_batch=8, opt_batch=4),
                                   timing_cache=cache, builder=builder, environment=lambda: env)
    return calls, engine, cache, sidecar


def test_tensorrt10_fp16_sets_the_builder_flag_and_profile(monkeypatch, tmp_path, onnx_file):
    calls, engine, cache, sidecar = _build(monkeypatch, tmp_path, onnx_file, "10.9.0", "fp16",
                                           converter=lambda *a: pytest.fail("no conversion on TensorRT 10"))
    assert ("flag", "FP16") in calls
    assert ("parse", str(onnx_file)) in calls
    assert ("pool", "workspace", 2 << 30) in calls
    assert ("profile", {"images": ([1, 3, 224, 224], [4, 3, 224, 224], [8, 3, 224, 224])}) in calls
    assert ("timing_cache_in", b"old timings") in calls and cache.read_bytes() == b"old timings+tuned"
    assert engine.read_bytes() == b"serialized engine"
    assert sidecar["fp16_method"] == WEAK_TYPING
    assert json.loads(trt_mod.sidecar_path(engine).read_text())["bindings"][0]["name"] == "images"


def test_tensorrt10_fp32_has_no_fp16_flag(monkeypatch, tmp_path, onnx_file):
    calls, _, _, sidecar = _build(monkeypatch, tmp_path, onnx_file, "10.9.0", "fp32")
    assert not [c for c in calls if c[0] == "flag"] and sidecar["fp16_method"] is None


def test_tensorrt11_fp16_parses_the_mixed_precision_model(monkeypatch, tmp_path, onnx_file):
    converted = []

    def converter(source, out_dir):
        converted.append((source, out_dir))
        path = out_dir / "pare.fp16-autocast.onnx"
        path.write_bytes(b"mixed onnx")
        return path

    calls, engine, _, sidecar = _build(monkeypatch, tmp_path, onnx_file, "11.4.0", "fp16", converter)
    assert converted == [(onnx_file, engine.parent)]
    assert ("parse", str(engine.parent / "pare.fp16-autocast.onnx")) in calls
    assert not [c for c in calls if c[0] == "flag"]             # BuilderFlag.FP16 does not exist
    assert sidecar["fp16_method"] == STRONG_TYPING
    assert sidecar["onnx_sha256"] == trt_mod.sha256_file(onnx_file)    # validity keyed to the source


def test_tensorrt11_fp32_needs_no_conversion(monkeypatch, tmp_path, onnx_file):
    calls, _, _, _ = _build(monkeypatch, tmp_path, onnx_file, "11.4.0", "fp32",
                            converter=lambda *a: pytest.fail("fp32 is not converted"))
    assert ("parse", str(onnx_file)) in calls


def test_tensorrt11_fp16_without_modelopt_says_what_to_install(monkeypatch, tmp_path, onnx_file):
    pytest.importorskip("onnx")
    monkeypatch.setitem(sys.modules, "modelopt", None)             # not installed
    monkeypatch.setitem(sys.modules, "modelopt.onnx", None)
    monkeypatch.setitem(sys.modules, "modelopt.onnx.autocast", None)
    with pytest.raises(trt_mod.EngineBuildError, match=r"nvidia-modelopt\[onnx\].*--precision fp32"):
        _build(monkeypatch, tmp_path, onnx_file, "11.4.0", "fp16")
    assert not (tmp_path / "engines" / "pare.fp16.engine").exists()


def test_autocast_result_is_reused_only_for_the_same_source(monkeypatch, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def model(scale):
        graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor("k", TensorProto.FLOAT, [1], [scale])])
        return helper.make_model(graph)

    source = tmp_path / "pare.onnx"
    onnx.save(model(2.0), str(source))
    conversions = []

    def convert_to_mixed_precision(onnx_path, low_precision_type, keep_io_types):
        conversions.append((onnx_path, low_precision_type, keep_io_types))
        return onnx.load(onnx_path)                                  # stands in for ModelOpt

    fake = types.ModuleType("modelopt.onnx.autocast")
    fake.convert_to_mixed_precision = convert_to_mixed_precision
    monkeypatch.setitem(sys.modules, "modelopt", types.ModuleType("modelopt"))
    monkeypatch.setitem(sys.modules, "modelopt.onnx", types.ModuleType("modelopt.onnx"))
    monkeypatch.setitem(sys.modules, "modelopt.onnx.autocast", fake)

    first = trt_precision.autocast_fp16_onnx(source, tmp_path / "engines")
    assert first == tmp_path / "engines" / "pare.fp16-autocast.onnx"
    assert conversions == [(str(source), "fp16", True)]
    assert trt_precision.autocast_fp16_onnx(source, tmp_path / "engines") == first
    assert len(conversions) == 1                                    # same source: reused
    onnx.save(model(3.0), str(source))                              # re-exported model
    trt_precision.autocast_fp16_onnx(source, tmp_path / "engines")
    assert len(conversions) == 2
