"""Device specs, the latency measurement protocol, profiling and stored device profiles."""

from ._backends import Runner, backend_names, backend_unavailable_reason, register_backend
from ._device import DeviceSpec, device_names, get_device
from ._kit import import_kit_results, write_kit
from ._measure import measure_in_passes, measure_models
from ._models import BlockKey, arch_blocks, block_keys
from ._protocol import PRESETS, MeasureConfig, Measurement, compare_fingerprints, fingerprint
from ._profile import DEFAULT_TARGET, TARGETS, Profile, Repeatability, profile_device
from ._sampling import coverage_archs, sample_profile_archs

__all__ = [
    "BlockKey", "DEFAULT_TARGET", "DeviceSpec", "MeasureConfig", "Measurement", "PRESETS", "Profile",
    "Repeatability", "Runner", "TARGETS",
    "arch_blocks", "backend_names", "backend_unavailable_reason", "block_keys", "compare_fingerprints",
    "coverage_archs", "device_names", "fingerprint", "get_device", "import_kit_results", "measure_in_passes",
    "measure_models",
    "profile_device", "register_backend", "sample_profile_archs", "write_kit",
]
