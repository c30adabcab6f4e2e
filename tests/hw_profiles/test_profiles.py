"""Device profiles as versioned data: every required device ships, loads, and names its sources."""

from pathlib import Path

import pytest

from search.errors import DeviceError
from search.hw_profiles import list_profiles, load_profile
from search.hw_profiles.profile import DeviceProfile

REQUIRED = ["rpi4", "rpi5", "jetson-orin-nano", "jetson-orin-nano-super", "jetson-agx-orin", "apple-m1", "apple-m2",
            "apple-m4", "snapdragon-8-gen-2", "snapdragon-7-plus-gen-2", "intel-core-ultra-258v", "h100-sxm", "host"]


def test_every_required_device_ships():
    assert set(REQUIRED) <= set(list_profiles())


@pytest.mark.parametrize("name", REQUIRED)
def test_profile_is_complete(name):
    p = load_profile(name)
    assert p.name == name and p.version >= 1
    assert p.sources and all(s.strip() for s in p.sources)
    assert p.bandwidth_gbs > 0 and p.memory_gb > 0 and p.peak(p.compute_dtype) > 0
    assert 16 in p.weight_formats
    assert 0 < p.efficiency.compute <= 1 and 0 < p.efficiency.memory <= 1
    assert p.runtime and p.compute_unit


def test_only_ampere_class_gpus_accelerate_two_four():
    two_four = {n for n in list_profiles() if "2:4" in load_profile(n).sparsity}
    assert two_four == {"jetson-orin-nano", "jetson-orin-nano-super", "jetson-agx-orin", "h100-sxm"}


def test_host_profile_is_measured():
    host = load_profile("host")
    assert host.measured is not None
    assert host.measured.threads >= 1 and host.measured.linear_gflops_by_rows
    assert host.measured.block_us and host.measured.forward_us


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(DeviceError) as exc:
        load_profile("rpi9")
    msg = str(exc.value)
    assert "rpi9" in msg and "rpi5" in msg and "jetson-orin-nano" in msg and "\n" not in msg


def test_load_by_path_and_round_trip(tmp_path: Path):
    original = load_profile("rpi5")
    path = tmp_path / "mine.yaml"
    path.write_text(original.to_yaml())
    again = load_profile(str(path))
    assert again == original


def test_missing_or_malformed_profile_file(tmp_path: Path):
    with pytest.raises(DeviceError, match="does not exist"):
        load_profile(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\n")
    with pytest.raises(DeviceError, match="bad.yaml"):
        load_profile(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(DeviceError, match="not valid YAML"):
        load_profile(str(broken))


def test_storage_bits_rounds_up_to_a_supported_format():
    p = load_profile("jetson-orin-nano").model_copy(update={"weight_formats": (3, 4, 8, 16)})
    assert [p.storage_bits(b) for b in (2, 3, 4, 5, 6, 8, 16)] == [3, 3, 4, 8, 8, 8, 16]


def test_weight_formats_must_include_16():
    data = load_profile("rpi5").model_dump()
    data["weight_formats"] = [4, 8]
    with pytest.raises(ValueError):
        DeviceProfile.model_validate(data)
