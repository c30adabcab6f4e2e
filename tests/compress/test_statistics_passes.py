"""Calibration statistics in passes bounded by DEVICEFIT_HESSIAN_BYTES: the same model whatever the split."""

import pytest
import torch

from search.compress import apply
from search.compress.layer import WorkLayer
from search.compress.layer_statistics import statistics_passes
from search.recipe import LayerCompression, parse_recipe
from tests.compress.helpers import tiny_model, token_batch

# GPTQ everywhere, Wanda on the MLP, and a factorised Wanda layer whose fp32 factors every pass must see
MIXED = {"layers": {"_default": {"bits": 4, "group_size": 16, "method": "gptq"},
                    "re:.*mlp\\.up_proj$": {"bits": 4, "group_size": 16, "sparsity": 0.5,
                                            "sparsity_score": "wanda", "method": "gptq"},
                    "re:.*mlp\\.gate_proj$": {"bits": 8, "group_size": 16, "rank": 0.5, "sparsity": 0.25,
                                              "sparsity_score": "wanda"}}}


def test_passes_keep_each_one_within_the_budget():
    parts = {f"l{i}": [WorkLayer(weight=torch.zeros(4, n), bias=None)] for i, n in enumerate([64, 64, 128, 32])}
    gptq = LayerCompression(bits=4, method="gptq")
    targets = {**{name: gptq for name in parts}, "plain": LayerCompression(bits=4)}
    parts["plain"] = [WorkLayer(weight=torch.zeros(4, 8), bias=None)]
    assert statistics_passes(parts, targets, budget=2**30) == [{"l0", "l1", "l2", "l3"}]
    passes = statistics_passes(parts, targets, budget=2 * 64 * 64 * 4)
    assert passes == [{"l0", "l1"}, {"l2"}, {"l3"}]  # l2 alone is over the budget: a pass of its own


@pytest.mark.parametrize("budget", ["1", str(80 * 80 * 4)])
def test_the_split_does_not_change_the_model(monkeypatch, budget):
    model = tiny_model("llama", hidden_size=64, intermediate_size=128)
    recipe, calibration = parse_recipe(MIXED), token_batch(n=4, seq=32)
    one_pass = apply(model, recipe, calibration=calibration).state_dict()
    monkeypatch.setenv("DEVICEFIT_HESSIAN_BYTES", budget)
    split = apply(model, recipe, calibration=calibration).state_dict()
    assert one_pass.keys() == split.keys()
    assert all(torch.equal(one_pass[k], split[k]) for k in one_pass)
