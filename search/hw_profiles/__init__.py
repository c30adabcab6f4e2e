"""Device profiles, the latency model, calibration and host measurement.

``load_profile`` / ``list_profiles`` are torch-free; ``measure`` and ``host``
import torch inside their functions.
"""

from search.hw_profiles.profile import DeviceProfile, list_profiles, load_profile

__all__ = ["DeviceProfile", "list_profiles", "load_profile"]
