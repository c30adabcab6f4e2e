"""Quality gets strictly worse as weight bits fall (8 -> 4 -> 3 -> 2), through the real apply()."""

import pytest

from search.compress import apply
from search.data import calibration_batches
from search.evaluators.quality import QualityEvaluator
from search.models import ByteTokenizer, LoadedModel, build_from_config
from search.recipe import CompressionConfig
from search.space.graph import graph_from_model
from tests.conftest import tiny_config

BITS = (16, 8, 4, 3, 2)


def _scores(loaded, batches, metric, bits=BITS):
    evaluator = QualityEvaluator(loaded, batches)
    return [evaluator.evaluate(apply(loaded.model, CompressionConfig.uniform(bits=b)))[metric] for b in bits]


def test_minilm_cosine_falls_with_every_bit_removed(minilm):
    bits = BITS[1:]  # apply() on MiniLM is the slow part; docs/compression.md has the 16-bit row
    cos = _scores(minilm, calibration_batches(minilm.tokenizer, split="eval", n=2, seq_len=48), "cosine", bits)
    assert cos[0] > 0.999
    assert all(a > b for a, b in zip(cos, cos[1:], strict=False)), dict(zip(bits, cos, strict=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_small_llama_kl_grows_with_every_bit_removed(seed):
    # random-init weights: the ordering held with 3x+ gaps between steps for seeds 0, 1, 2
    model = build_from_config(tiny_config("llama"), seed=seed)
    loaded = LoadedModel(ref="tiny-llama", model=model, tokenizer=ByteTokenizer(384), graph=graph_from_model(model))
    kl = _scores(loaded, calibration_batches(loaded.tokenizer, split="eval", n=4, seq_len=64), "kl")
    assert kl[0] < 1e-5
    assert all(a < b for a, b in zip(kl, kl[1:], strict=False)), dict(zip(BITS, kl, strict=True))
