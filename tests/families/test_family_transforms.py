"""Every transform runs on the newer families, and more compression moves the output further from the teacher.

KL divergence of the compressed model's next-token distribution to the
uncompressed one on random tokens (random-init models: the ordering is the
property, not the values).
"""

import pytest
import torch
import torch.nn.functional as F

from search.compress import apply
from search.recipe import CompressionConfig as C
from search.recipe import parse_recipe
from tests.compress.helpers import outputs, token_batch
from tests.families.configs import NEW_FAMILIES, family_model

LADDERS = {  # each from least to most compression
    "bits": [C.uniform(bits=b, group_size=32) for b in (8, 4, 3, 2)],
    "unstructured sparsity": [C.uniform(sparsity=s) for s in (0.25, 0.5, 0.75)],
    "channel sparsity": [C.uniform(sparsity=s, sparsity_pattern="channel") for s in (0.25, 0.5, 0.75)],
    "low rank": [C.uniform(rank=r) for r in (0.75, 0.5, 0.25)],
    "mlp width": [C.uniform(width=w) for w in (0.75, 0.5, 0.25)],
    "heads": [C.uniform(heads=0.5)],
    "depth": [C.uniform(keep_blocks=(0, 1)), C.uniform(keep_blocks=(0,))],
}


def _kl(student, teacher_logp, ids) -> float:
    logp = F.log_softmax(outputs(student, ids), dim=-1)
    return float(F.kl_div(logp, teacher_logp, log_target=True, reduction="batchmean"))


@pytest.fixture(scope="module", params=NEW_FAMILIES)
def teacher(request):
    model = family_model(request.param)
    ids = token_batch(4, 16, seed=5)
    return model, ids, F.log_softmax(outputs(apply(model, C.uniform()), ids), dim=-1)


@pytest.mark.parametrize("ladder", list(LADDERS))
def test_more_compression_moves_further_from_the_teacher(teacher, ladder):
    model, ids, teacher_logp = teacher
    calibration = token_batch(4, 16, seed=6)
    kls = [_kl(apply(model, recipe, calibration=calibration), teacher_logp, ids) for recipe in LADDERS[ladder]]
    assert all(k > 0 for k in kls), kls
    assert kls == sorted(kls) and len(set(kls)) == len(kls), kls


def test_identity_recipe_is_the_teacher(teacher):
    model, ids, teacher_logp = teacher
    assert _kl(apply(model, C.uniform()), teacher_logp, ids) == 0.0
    assert torch.isfinite(teacher_logp).all()


def test_compressed_embeddings_keep_the_family_scaling(teacher):
    """Gemma scales looked-up rows by sqrt(hidden): an 8-bit table must give the same rows up to rounding."""
    model, ids, _ = teacher
    compressed = apply(model, parse_recipe({"embedding": {"bits": 8, "group_size": 32}}), dtype=torch.float32)
    with torch.no_grad():
        want = model.get_input_embeddings()(ids).float()
        got = compressed.get_input_embeddings()(ids).float()
    assert float((got - want).norm() / want.norm()) < 0.02
