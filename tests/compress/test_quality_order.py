"""Fewer bits, worse model: strictly, from 8 to 4 to 3 to 2 bits (own direct measures, no evaluator needed)."""

import torch.nn.functional as F

from search.compress import apply
from search.recipe import CompressionConfig as C
from tests.compress.helpers import outputs, token_batch


def _mean_pooled_cosine(model, reference, ids):
    pooled = outputs(model, ids).mean(dim=1)
    return float(F.cosine_similarity(pooled, reference.mean(dim=1), dim=-1).mean())


def test_minilm_cosine_falls_with_bits(minilm):
    ids = token_batch(4, 32, vocab=30522, seed=3)
    reference = outputs(minilm.model, ids)
    cosines = [_mean_pooled_cosine(apply(minilm.model, C.uniform(bits=b)), reference, ids) for b in (8, 4, 3, 2)]
    assert cosines == sorted(cosines, reverse=True) and len(set(cosines)) == 4, cosines
    assert cosines[0] > 0.99


def test_small_llama_kl_rises_with_bits(tiny_llama):
    ids = token_batch(4, 32, seed=4)
    teacher = F.log_softmax(outputs(tiny_llama.model, ids), dim=-1)
    kls = []
    for bits in (8, 4, 3, 2):
        student = F.log_softmax(outputs(apply(tiny_llama.model, C.uniform(bits=bits, group_size=32)), ids), dim=-1)
        kls.append(float(F.kl_div(student, teacher, log_target=True, reduction="batchmean")))
    assert kls == sorted(kls) and len(set(kls)) == 4, kls
