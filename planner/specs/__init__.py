"""Input specs: what is trained (model), how (run, layout), on what (hardware)."""

from .hardware import AcceleratorSpec, HardwareSpec, NetworkSpec, NodeSpec, Sourced
from .layout import LayoutSpec
from .model import AttentionSpec, ModelSpec, MoESpec
from .run import ObjectiveSpec, RunSpec
from .schedule import ScheduleSpec

__all__ = [
    "AcceleratorSpec", "AttentionSpec", "HardwareSpec", "LayoutSpec", "ModelSpec", "MoESpec", "NetworkSpec",
    "NodeSpec", "ObjectiveSpec", "RunSpec", "ScheduleSpec", "Sourced",
]
