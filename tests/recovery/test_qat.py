"""QAT on packed layers: trainable twins start equal to the packed model, training lowers the KL,
and re-packing gives real packed storage that reloads identically."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file

from search.compress import apply
from search.compress.modules import LowRankLinear, QuantizedLinear, SparseLinear
from search.models import build_from_config
from search.recipe import CompressionConfig
from search.recovery import Distiller, Quantizer
from search.recovery.qat import make_trainable, pack_trained, trainable_summary
from tests.conftest import tiny_config

RECIPES = {
    "2bit": CompressionConfig.uniform(bits=2, group_size=32),
    "3bit-sym-lowrank": CompressionConfig.uniform(bits=3, group_size=32, symmetric=True, rank=0.5),
    "4bit-channel": CompressionConfig.uniform(bits=4, sparsity=0.25, sparsity_pattern="channel"),
    "16bit-2:4": CompressionConfig.uniform(sparsity=0.5, sparsity_pattern="2:4"),
}


@pytest.fixture(scope="module")
def teacher():
    return build_from_config(tiny_config("llama"))


def _ids(n=4, seq=24):
    return torch.randint(0, 384, (n, seq), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", list(RECIPES))
def test_qat_then_repack_trains_and_reloads_identically(teacher, name, tmp_path):
    recipe = RECIPES[name]
    packed = apply(teacher, recipe)
    ids = _ids()
    student = make_trainable(copy.deepcopy(packed))
    kinds = trainable_summary(student)
    assert kinds["fake_quant"] + kinds["masked"] > 0
    with torch.no_grad():  # the twins start where the packed model is
        diff = (student(ids).logits - packed(ids).logits.float()).abs().max()
    assert diff < 0.05
    distiller = Distiller(teacher, student)
    before = distiller.evaluate(ids)
    distiller.train(ids, steps=8, lr=1e-3)
    trained = distiller.evaluate(ids)
    assert trained < before
    recovered = pack_trained(student)
    # packed again, with the same module types, buffer shapes and dtypes as apply() produces
    ref_state, new_state = packed.state_dict(), recovered.state_dict()
    assert ref_state.keys() == new_state.keys()
    for key, value in ref_state.items():
        assert new_state[key].shape == value.shape and new_state[key].dtype == value.dtype, key
    assert {type(m) for m in recovered.modules()} == {type(m) for m in packed.modules()}
    assert any(not torch.equal(ref_state[k], new_state[k]) for k in ref_state)  # weights really changed
    assert Distiller(teacher, recovered).evaluate(ids) == pytest.approx(trained, rel=0.05, abs=2e-4)
    # storage round trip: safetensors file -> a structure-only model -> identical outputs
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in new_state.items()}, str(path))
    shell = apply(teacher, recipe, structure_only=True)
    shell.load_state_dict(load_file(str(path)), strict=True)
    for key, value in shell.state_dict().items():
        assert torch.equal(value, new_state[key]), key
    with torch.no_grad():
        assert torch.equal(shell(ids).logits, recovered(ids).logits)


def test_packed_module_types_survive(teacher):
    recovered = pack_trained(make_trainable(apply(teacher, RECIPES["3bit-sym-lowrank"])))
    kinds = {type(m) for m in recovered.modules()}
    assert LowRankLinear in kinds and QuantizedLinear in kinds
    sparse = pack_trained(make_trainable(apply(teacher, RECIPES["16bit-2:4"])))
    assert SparseLinear in {type(m) for m in sparse.modules()}
    assert not any(p.requires_grad for p in recovered.parameters())


def test_quantizer_qat_beats_ptq_at_2_bits(teacher):
    ids = _ids(n=8)
    q = Quantizer(teacher)
    ptq = q.quantize(bits=2, group_size=32, mode="ptq")
    qat = q.quantize(bits=2, group_size=32, mode="qat", batches=ids, steps=10, lr=1e-3)
    assert isinstance(qat.model.layers[0].mlp.up_proj, QuantizedLinear)
    assert Distiller(teacher, qat).evaluate(ids) < Distiller(teacher, ptq).evaluate(ids)
