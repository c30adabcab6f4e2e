"""apply(..., variants=VariantCache): a recipe assembled from cached layers is the recipe built from scratch.

Every case compares state_dicts and outputs bit for bit against apply() without a cache, both
when the cache is filled (cold) and when every layer comes from it (warm).
"""

import pytest
import torch

from search.compress import apply
from search.compress.variant_cache import VariantCache
from search.errors import DeviceFitError
from search.recipe import CompressionConfig, parse_recipe
from tests.compress.helpers import outputs, tiny_model, token_batch

Q = r"re:(q_proj|c_attn|query)$"  # the query projection of llama / gpt2 / bert
FC2 = r"re:(down_proj|mlp\.c_proj|\d\.output\.dense)$"  # the MLP's output projection
K = r"re:(k_proj|key|attn\.c_proj)$"  # gpt2 has no k: its attention output

RECIPES = {
    "int4": CompressionConfig.uniform(bits=4, group_size=32),
    "gguf": parse_recipe({"layers": {"_default": {"format": "Q8_0"}, FC2: {"format": "Q4_0"}},
                          "embedding": {"format": "Q8_0"}}),
    "lowrank": CompressionConfig.uniform(rank=0.5, bits=8, group_size=32),
    "magnitude 2:4": CompressionConfig.uniform(bits=4, group_size=32, sparsity=0.5, sparsity_pattern="2:4"),
    "wanda": CompressionConfig.uniform(sparsity=0.5, sparsity_score="wanda"),
    "gptq": CompressionConfig.uniform(bits=4, group_size=32, method="gptq"),
    "gptq gguf": parse_recipe({"layers": {"_default": {"format": "Q4_0", "method": "gptq"}}}),
    "width": CompressionConfig.uniform(bits=8, group_size=32, width=0.5, heads=0.5),
    "depth": CompressionConfig.uniform(bits=4, group_size=32, keep_blocks=(0, 2)),
    "mixed": parse_recipe({
        "layers": {"_default": {"bits": 4, "group_size": 32},
                   Q: {"sparsity": 0.5, "sparsity_score": "wanda", "rank": 0.5},
                   FC2: {"sparsity": 0.25, "sparsity_score": "wanda", "bits": 8, "group_size": 32,
                         "method": "gptq"},
                   K: {"bits": 16}},
        "width": {"mlp": 0.5}, "keep_blocks": [0, 2], "embedding": {"bits": 8, "group_size": 32}}),
}
FAMILIES = {"llama": {"intermediate_size": 128}, "gpt2": {}, "bert": {}}  # GGUF rows: multiples of 32


def assert_identical(a, b, ids):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    assert torch.equal(outputs(a, ids), outputs(b, ids))


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    return tiny_model(request.param, **FAMILIES[request.param])


@pytest.mark.parametrize("label", list(RECIPES))
def test_cold_and_warm_assembly_equal_a_fresh_build(family, label):
    recipe, calib, ids = RECIPES[label], token_batch(2, 12), token_batch(2, 10, seed=5)
    fresh = apply(family, recipe, calib)
    cache = VariantCache()
    assert_identical(apply(family, recipe, calib, variants=cache), fresh, ids)
    misses = cache.misses
    assert_identical(apply(family, recipe, calib, variants=cache), fresh, ids)
    assert cache.misses == misses and cache.hits > 0


def test_the_source_model_is_left_untouched():
    model = tiny_model("gpt2")
    model.alias = model.transformer.h[0].mlp.c_fc  # a module reached by a second path is not shared
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cache, calib = VariantCache(), token_batch(2, 12)
    for _ in range(2):
        for recipe in RECIPES.values():
            apply(model, recipe, calib, variants=cache)
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(v, before[k]) and v.dtype == before[k].dtype
                                               for k, v in after.items())


def _misses(model, recipe, cache, calib):
    before = cache.misses
    apply(model, recipe, calib, variants=cache)
    return cache.misses - before


def test_data_aware_layers_miss_when_what_feeds_them_changes():
    model, calib = tiny_model("llama"), token_batch(2, 12)
    cache = VariantCache()
    wanda = CompressionConfig.uniform(sparsity=0.5, sparsity_score="wanda")
    assert _misses(model, wanda, cache, calib) == 29  # 4 blocks x 7 layers + lm_head
    fewer_blocks = CompressionConfig.uniform(sparsity=0.5, sparsity_score="wanda", keep_blocks=(0, 1, 3))
    assert _misses(model, fewer_blocks, cache, calib) == 22
    narrower = CompressionConfig.uniform(sparsity=0.5, sparsity_score="wanda", width=0.5)
    assert _misses(model, narrower, cache, calib) == 29 + 1  # and width pruning's activation energies
    assert _misses(model, wanda, cache, calib.flip(0)) == 29  # other calibration rows
    # magnitude pruning reads the weights only: the same layers hit whatever blocks are dropped
    magnitude = CompressionConfig.uniform(sparsity=0.5)
    assert _misses(model, magnitude, cache, calib) == 29
    assert _misses(model, magnitude.model_copy(update={"keep_blocks": (0, 1, 3)}), cache, calib) == 0
    gptq = CompressionConfig.uniform(bits=4, group_size=32, method="gptq")
    assert _misses(model, gptq, cache, calib) == 29
    assert _misses(model, gptq.model_copy(update={"keep_blocks": (0, 1, 3)}), cache, calib) == 22
    for recipe in (fewer_blocks, narrower):
        assert_identical(apply(model, recipe, calib, variants=cache), apply(model, recipe, calib), calib)


def test_the_rank_of_a_factorised_wanda_layer_is_part_of_the_others_keys():
    model, calib = tiny_model("llama"), token_batch(2, 12)
    cache = VariantCache()

    def recipe(q: dict):
        return parse_recipe({"layers": {"_default": {"sparsity": 0.5, "sparsity_score": "wanda"},
                                        Q: {"sparsity": 0.5, "sparsity_score": "wanda", **q}}})

    assert _misses(model, recipe({"rank": 0.5}), cache, calib) == 29
    assert _misses(model, recipe({"rank": 0.25}), cache, calib) == 29  # the statistics pass runs other factors
    # the same factors quantized differently: the statistics are the same, only q_proj itself is new
    bits = recipe({"rank": 0.5, "bits": 8, "group_size": 32})
    assert _misses(model, bits, cache, calib) == 4
    assert_identical(apply(model, bits, calib, variants=cache), apply(model, bits, calib), calib)


def test_a_partial_hit_measures_statistics_with_the_cached_factorised_layers_in_place():
    model, calib = tiny_model("llama"), token_batch(2, 12)
    cache = VariantCache()
    first = parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 32},
                                     Q: {"sparsity": 0.5, "sparsity_score": "wanda", "rank": 0.5}}})
    apply(model, first, calib, variants=cache)
    # q_proj hits (a factorised Wanda layer); down_proj misses and is measured behind q_proj's factors
    second = first.model_copy(update={"layers": {**first.layers, FC2: parse_recipe(
        {"layers": {"_default": {"sparsity": 0.5, "sparsity_score": "wanda"}}}).layers["_default"]}})
    hits = cache.hits
    assert_identical(apply(model, second, calib, variants=cache), apply(model, second, calib), calib)
    assert cache.hits > hits


def test_width_pruning_reuses_the_activation_energies_of_the_same_kept_blocks():
    model, calib = tiny_model("llama"), token_batch(2, 12)
    cache = VariantCache()
    apply(model, CompressionConfig.uniform(bits=4, group_size=32, width=0.5), calib, variants=cache)
    hits = cache.hits
    other = CompressionConfig.uniform(bits=8, group_size=32, width=0.75)  # every layer new, the energies not
    assert_identical(apply(model, other, calib, variants=cache), apply(model, other, calib), calib)
    assert cache.hits == hits + 1
    fewer_blocks = other.model_copy(update={"keep_blocks": (0, 2, 3)})
    assert_identical(apply(model, fewer_blocks, calib, variants=cache), apply(model, fewer_blocks, calib), calib)
    assert cache.hits == hits + 1 + 3 * 4 + 1  # the unsliced attention layers and lm_head hit, the energies miss


def test_the_byte_bound_evicts_least_recently_used():
    model, calib = tiny_model("llama"), token_batch(2, 12)
    recipe = RECIPES["int4"]
    cache = VariantCache(max_bytes=20_000)
    apply(model, recipe, calib, variants=cache)
    assert 0 < cache.bytes <= 20_000 and cache.evictions > 0
    assert_identical(apply(model, recipe, calib, variants=cache), apply(model, recipe, calib), calib)
    nothing = VariantCache(max_bytes=0)  # every layer is over the bound: nothing is kept
    apply(model, recipe, calib, variants=nothing)
    assert len(nothing) == 0 and nothing.bytes == 0


def test_what_a_candidate_does_to_its_modules_never_reaches_the_cache(tiny_llama):
    from search.data import calibration_batches
    from search.evaluators.quality import QualityEvaluator
    from search.recovery import recover
    from search.recovery.recover import RecoverySettings

    recipe = parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 32},
                                      Q: {"rank": 0.5, "bits": 8, "group_size": 32},
                                      FC2: {"sparsity": 0.5, "sparsity_pattern": "2:4"}}})
    model, calib, ids = tiny_llama.model, token_batch(2, 12), token_batch(2, 10, seed=5)
    fresh = apply(model, recipe, calib)
    cache = VariantCache()
    assembled = apply(model, recipe, calib, variants=cache)
    train = calibration_batches(tiny_llama.tokenizer, split="calib", n=8, seq_len=16)
    evaluator = QualityEvaluator(tiny_llama, calibration_batches(tiny_llama.tokenizer, split="eval", n=2, seq_len=16))
    recover(tiny_llama, assembled, recipe, train, "2steps", evaluator=evaluator,
            settings=RecoverySettings(lr=1e-2), keep_best=False)
    with torch.no_grad():  # a user training the candidate in place, buffers included
        for t in [*assembled.parameters(), *assembled.buffers()]:
            t.add_(1)
    assert_identical(apply(model, recipe, calib, variants=cache), fresh, ids)


def test_one_cache_serves_one_model():
    cache, first = VariantCache(), tiny_model("bert")
    apply(first, RECIPES["int4"], variants=cache)
    with pytest.raises(ValueError, match="another model"):
        apply(tiny_model("bert"), RECIPES["int4"], variants=cache)
    del first  # once its model is gone, the cache starts over with the next one (same layer names: no hits)
    apply(tiny_model("bert"), RECIPES["int4"], variants=cache)
    assert cache.hits == 0 and cache.misses == 2 * len(cache)


def test_a_source_changed_in_place_empties_the_cache():
    model, recipe = tiny_model("llama"), RECIPES["int4"]
    cache = VariantCache()
    apply(model, recipe, variants=cache)
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight.mul_(2)
    assert_identical(apply(model, recipe, variants=cache), apply(model, recipe), token_batch(2, 10))
    assert cache.hits == 0


def test_minilm_through_evaluation_compress(minilm, monkeypatch):
    from search import evaluation
    from search.data_policy import DataPolicy

    policy = DataPolicy(calib_rows=2, eval_rows=2, seq_len=32)
    recipes = [
        parse_recipe({"layers": {"_default": {"format": "Q4_0"}, FC2: {"format": "Q8_0"}},
                      "width": {"mlp": 0.75, "heads": 0.5}, "keep_blocks": [0, 2, 3, 5],
                      "embedding": {"format": "Q5_0"}}),
        parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 128},
                                 FC2: {"bits": 8, "sparsity": 0.5, "sparsity_score": "wanda"}},
                      "width": {"mlp": 0.5}, "keep_blocks": [0, 1, 2, 4, 5]}),
    ]
    monkeypatch.setenv(evaluation.VARIANT_CACHE_ENV, "0")
    assert evaluation.variant_cache(minilm) is None
    fresh = [evaluation.compress(minilm, r, policy) for r in recipes]
    monkeypatch.delenv(evaluation.VARIANT_CACHE_ENV)
    ids = token_batch(2, 16, vocab=30000)
    for _ in range(2):  # cold, then warm
        for recipe, expected in zip(recipes, fresh, strict=True):
            built = evaluation.compress(minilm, recipe, policy)
            assert_identical(built, expected, ids)
            assert evaluation.score(minilm, built, policy, recipe=recipe) == \
                evaluation.score(minilm, expected, policy, recipe=recipe)
    assert evaluation.variant_cache(minilm).hits > 0
    monkeypatch.setenv(evaluation.VARIANT_CACHE_ENV, "lots")
    with pytest.raises(DeviceFitError, match="whole number of bytes"):
        evaluation.variant_cache(minilm)
