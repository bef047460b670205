"""The PARE network (HRNet-W32 + part-attention head) and its checkpoint loader."""
from .checkpoint import CheckpointError, CheckpointInfo, load_network
from .config import PareConfig, UnsupportedConfigError
from .pare import PARE

__all__ = ["PARE", "PareConfig", "load_network", "CheckpointError", "CheckpointInfo",
           "UnsupportedConfigError"]
