"""End-to-end calibration of a measured host profile on reference models of the host's own.

The micro-benchmarks time each op alone; a whole forward also pays what they cannot
see (weights and activations evicted between ops, kernels near the roofline ridge
overlapping compute and traffic imperfectly, attention at small head sizes). So
``search-cli profile`` times a few randomly initialised reference models end to end
and fits the profile's compute / memory / overhead efficiency factors to them with
the least-squares calibration of ``calibrate.fit``. The references use their own
shapes, depths, vocabularies and seeds, disjoint from the random recipes of
``bench/latency_accuracy.py`` (which checks the result on models it never saw).
"""

from __future__ import annotations

from search.hw_profiles.calibrate import Case, calibrated
from search.hw_profiles.profile import DeviceProfile

FACTORS = ("compute", "memory", "overhead")
# (config, workloads): an encoder at three lengths (short ones are overhead, long ones compute), a decoder at two contexts and a prompt
REFERENCES = (
    (dict(model_type="bert", hidden_size=384, num_attention_heads=12, intermediate_size=1280, num_hidden_layers=4,
          vocab_size=1000, max_position_embeddings=512), ("encode:24", "encode:96", "encode:192")),
    (dict(model_type="llama", hidden_size=640, intermediate_size=1792, num_hidden_layers=6, num_attention_heads=10,
          num_key_value_heads=2, vocab_size=16000, max_position_embeddings=1024, tie_word_embeddings=True),
     ("decode:64", "decode:256", "prefill:64")),
)


def reference_cases(rounds: int, seed: int = 1234) -> list[Case]:
    """Measured latency of each reference model and workload (median of interleaved rounds, pinned threads
    set by the caller)."""
    import torch

    from search.hf_models import build_from_config
    from search.hw_profiles.measure import interleaved_medians, runner
    from search.recipe import CompressionConfig
    from search.space.graph import graph_from_config
    from search.workload import Workload

    torch.manual_seed(seed)
    cases, meta = {}, {}
    for config, workloads in REFERENCES:
        model = build_from_config(config).to(torch.bfloat16).eval()
        graph = graph_from_config(config)
        for workload in workloads:
            key = f"{config['model_type']}:{workload}"
            cases[key] = runner(model, workload, seed=seed)
            meta[key] = (graph, Workload.parse(workload))
    with torch.inference_mode():
        med = interleaved_medians(cases, rounds)
    return [Case(label=f"reference {key}", graph=meta[key][0], recipe=CompressionConfig(), workload=meta[key][1],
                 measured_ms=med[key]) for key in cases]


def calibrate_on_references(profile: DeviceProfile, rounds: int) -> DeviceProfile:
    """The profile with its efficiency factors fitted to the reference models' measured latency."""
    cases = reference_cases(rounds)
    return calibrated(profile, cases, f"{len(cases)} end-to-end timings of the host's reference models "
                                      "(search.hw_profiles.host_reference)", FACTORS)
