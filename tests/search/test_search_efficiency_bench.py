"""bench/search_efficiency.py's scoring: hypervolume after the first k full evaluations, against the union."""

from bench.search_efficiency import summarise

NORM = {"budget_ms": 40.0, "full_bytes": 100.0}


def point(cosine, latency_ms, memory, feasible=True):
    return {"quality": {"cosine": cosine}, "latency_ms": latency_ms, "memory_bytes": memory, "feasible": feasible}


def test_hv_after_k_evaluations_grows_and_reaches_one_only_with_the_whole_reference():
    good = [point(0.9, 20.0, 50), point(0.99, 30.0, 60)]
    other = {"arm": "b", "evaluated": [point(0.5, 10.0, 30)]}
    run = {"arm": "a", "evaluated": [point(0.5, 39.0, 90), point(0.2, 40.0, 99, feasible=False), *good]}
    reference = summarise([run, other], [1, 2, 3], NORM)
    assert set(run["hv"]) == {"1", "2", "3", "4"}  # the checkpoints and the run's last evaluation
    assert run["hv"]["1"] == run["hv"]["2"]  # an infeasible candidate adds nothing
    assert run["hv"]["1"] < run["hv"]["3"] < run["hv"]["4"] < 1.0  # the other run's fast point is missing
    assert len(reference) == 3  # the first point is dominated by (0.9, 20 ms, 50)
    only = {"arm": "a", "evaluated": list(run["evaluated"])}
    summarise([only], [4], NORM)
    assert abs(only["hv"]["4"] - 1.0) < 1e-12  # a run that is the whole union scores exactly 1
