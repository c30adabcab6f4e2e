import pytest

from search.errors import SpecError
from search.spec import SearchSpec, parse_spec
from search.units import parse_bytes, parse_duration_ms
from search.workload import Workload


@pytest.mark.parametrize("text, ms", [("200ms", 200), ("1.5s", 1500), ("10m", 600_000), ("250us", 0.25)])
def test_durations(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text, n", [("512MB", 512 * 10**6), ("2GB", 2 * 10**9), ("1GiB", 2**30), ("64 KB", 64_000)])
def test_sizes(text, n):
    assert parse_bytes(text) == n


def test_bare_number_asks_for_a_unit():
    with pytest.raises(SpecError, match="has no unit: add one of"):
        parse_duration_ms("200", "max_latency")
    with pytest.raises(SpecError, match="unknown size unit 'XB'"):
        parse_bytes("3XB")


def test_workloads():
    assert Workload.parse("decode:512") == Workload(kind="decode", tokens=512)
    assert Workload.parse("encode:128x8").batch == 8
    with pytest.raises(SpecError, match="decode:abc"):
        Workload.parse("decode:abc")


def test_spec_json_form_from_the_issue():
    spec = parse_spec('{"model": "demo:minilm", "device": "rpi5", "workload": "encode:128", '
                      '"budget": {"max_latency": "200ms", "max_memory": "64MB"}, "trials": 40}')
    assert spec.budget.latency_ms == 200 and spec.budget.memory_bytes == 64_000_000
    assert parse_spec(spec.model_dump_json()) == spec
    assert SearchSpec().sampler == "nsga2"


@pytest.mark.parametrize("bad, needle", [
    ({"budget": {"max_latency": "200"}}, "budget.max_latency"),
    ({"trials": 0}, "trials"),
    ({"sampler": "annealing"}, "sampler"),
    ({"objectives": ["latency"]}, "quality"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_specs_name_the_field(bad, needle):
    with pytest.raises(SpecError, match=needle):
        parse_spec(bad)
