"""A short search's front matches or dominates every uniform recipe of the device's runtime formats.

The baselines are built here without the search space (llama.cpp's ``--pure`` files: every 2-D weight
and the token embeddings in one GGUF type, llama.cpp's fallback where the type's blocks do not fit a
row), scored independently through search.evaluation, and each feasible one must be matched or
dominated in (quality, latency, memory) by a member of the front.
"""

import pytest

from search.formats.filetypes import _fit_row
from search.formats.ggml_types import GGML_TYPES
from search.recipe import CompressionConfig, LayerCompression

RELATIVE_TOLERANCE = 1e-6  # the same recipe scored twice through the same path


def pure_gguf_recipe(graph, type_name: str) -> CompressionConfig:
    """What ``llama-quantize --pure <type>`` writes: each layer and the embeddings in the type, or llama.cpp's
    fallback type for rows the type's blocks do not divide."""
    layers = {layer.name: LayerCompression(format=_fit_row(type_name, layer.in_features))
              for layer in graph.layers if not layer.tied}
    return CompressionConfig(layers=layers, embedding=LayerCompression(format=_fit_row(type_name, graph.hidden_size)))


def runtime_baselines(graph, caps, bits) -> list[tuple[str, CompressionConfig]]:
    if caps.gguf:
        return [(name, pure_gguf_recipe(graph, name)) for name in caps.weight_formats
                if GGML_TYPES[name].quantized and GGML_TYPES[name].nominal_bits in bits]
    symmetric = bool(caps.symmetric)
    return [(f"{b}-bit g{g}", CompressionConfig.uniform(bits=b, group_size=g, symmetric=symmetric))
            for b in bits if b < 16 and (caps.bits is None or b in caps.bits)
            for g in (32, 128) if caps.group_sizes is None or g in caps.group_sizes]


def small_trained_tinylm() -> str:
    """demo:tinylm's architecture and training, smaller (2 blocks, 30 steps: seconds to build, cached);
    rows of 256 and 512, so every GGUF type, K-quants included, fits every layer."""
    from search import demos

    recipe = demos.small_recipe(hidden_size=256, intermediate_size=512, num_heads=8, num_kv_heads=4)
    return str(demos.tinylm_dir(recipe, progress=False))


def covering_member(front, base, metric, direction):
    def as_good(quality):
        slack = RELATIVE_TOLERANCE * max(abs(base["quality"]), 1e-9)
        return quality >= base["quality"] - slack if direction == "max" else quality <= base["quality"] + slack

    return next((c for c in front if as_good(c.quality[metric]) and c.latency_ms <= base["latency_ms"]
                 and c.memory_bytes <= base["memory_bytes"]), None)


@pytest.mark.slow
@pytest.mark.parametrize("model,workload", [("demo:minilm", "encode:128"), ("tinylm-small", "decode:128")])
def test_front_matches_or_dominates_every_uniform_runtime_format(results, model, workload):
    from search.engine import run_search
    from search.evaluation import evaluate_recipe, loaded_model
    from search.hw_profiles.runtimes import runtime_caps
    from search.models import load_graph
    from search.seeds import seed_params
    from search.space.suggest import RecipeSpace
    from search.spec import SearchSpec
    from search.staging import CheapEvaluator

    ref = small_trained_tinylm() if model == "tinylm-small" else model
    spec = SearchSpec(model=ref, device="rpi5", workload=workload, budget={"max_latency": "40ms"},
                      calib_samples=8, seq_len=32, storage="memory://", space={"granularity": "model"})
    graph = load_graph(ref)
    cheap = CheapEvaluator(spec, graph)
    caps = runtime_caps(cheap.profile)
    seeds = seed_params(RecipeSpace(graph, spec.space, caps))
    spec = spec.model_copy(update={"trials": len(seeds) + 2})  # every seed, and a couple of proposals
    result = run_search(spec, save=False)
    metric, direction = result.metric

    loaded = loaded_model(ref)
    checked = []
    for label, recipe in runtime_baselines(graph, caps, spec.space.bits):
        costs = cheap(recipe)
        if not costs.feasible:
            continue
        base = {"quality": evaluate_recipe(loaded, recipe, spec.data_policy).quality[metric],
                "latency_ms": costs.latency_ms, "memory_bytes": costs.memory_bytes}
        member = covering_member(result.front, base, metric, direction)
        assert member is not None, f"no front member matches or dominates uniform {label}: {base}"
        checked.append(label)
    assert {"Q8_0", "Q5_K", "Q4_K", "Q4_0"} <= set(checked)  # the baselines the issue names were in budget
