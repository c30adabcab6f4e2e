"""GgufLinear: holds exactly the GGUF bytes, computes with the weight llama.cpp reconstructs."""

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf.quants import dequantize

from search.compress.gguf_linear import GgufLinear
from search.errors import RecipeError
from search.formats.activation_rounding import rounding_for
from search.formats.codec import quantize_rows
from search.formats.ggml_types import GGML_TYPES
from tests.formats.helpers import FLOATS, KQUANTS, LEGACY, gaussian


@pytest.mark.parametrize("name", LEGACY + KQUANTS + FLOATS)
def test_blocks_are_the_gguf_bytes_and_forward_uses_their_dequantization(name):
    w = torch.from_numpy(gaussian(48, 512, seed=5)) * 0.05
    bias = torch.linspace(-1, 1, 48)
    layer = GgufLinear.from_weight(w, bias, name)
    assert layer.ggml_type == name and (layer.in_features, layer.out_features) == (512, 48)
    assert layer.blocks.dtype == torch.uint8
    assert tuple(layer.blocks.shape) == (48, GGML_TYPES[name].row_bytes(512))
    assert np.array_equal(layer.blocks.numpy(), quantize_rows(w.numpy(), name))
    runtime = torch.from_numpy(dequantize(layer.blocks.numpy(), gguf.GGMLQuantizationType[name]).reshape(48, 512))
    assert torch.equal(layer.weight, runtime)  # what llama.cpp multiplies by, bit for bit
    x = torch.randn(3, 7, 512)
    rounded = rounding_for(name)  # the activations llama.cpp multiplies that type by
    assert torch.equal(layer(x), F.linear(rounded(x), runtime, bias.to(torch.bfloat16).float()))  # exact weight
    x16 = x.to(torch.bfloat16)  # a bf16 model multiplies by the bf16 rounding of that weight
    assert torch.equal(layer(x16), F.linear(rounded(x16), runtime.to(torch.bfloat16), layer.bias))
    if name != "BF16":
        assert not torch.equal(rounded(x), x)  # the rounding is real for every quantized / F16 type


def test_state_dict_holds_only_blocks_and_bias_and_reloads():
    w = torch.from_numpy(gaussian(16, 256, seed=1))
    layer = GgufLinear.from_weight(w, None, "Q4_K")
    layer(torch.randn(2, 256))  # fills the cache, which must not be part of the state
    assert set(layer.state_dict()) == {"blocks"}
    empty = GgufLinear("Q4_K", 256, 16)
    empty.load_state_dict(layer.state_dict())
    assert torch.equal(empty.weight, layer.weight)


def test_row_length_must_be_a_multiple_of_the_block():
    with pytest.raises(RecipeError, match=r"'model.layers.0.mlp.down_proj'.*multiple of 256"):
        GgufLinear.from_weight(torch.randn(8, 176), None, "Q4_K", "model.layers.0.mlp.down_proj")
    with pytest.raises(RecipeError, match="multiple of 32"):
        GgufLinear("Q4_0", 48, 8)


def test_repeated_encodings_come_from_the_cache_and_stay_independent(monkeypatch):
    from search.formats import codec

    real, calls = codec.quantize_rows, []
    monkeypatch.setattr(codec, "quantize_rows", lambda w, t: calls.append(t) or real(w, t))
    w = torch.from_numpy(gaussian(16, 256, seed=9))
    first = GgufLinear.from_weight(w, None, "Q5_K")
    second = GgufLinear.from_weight(w.clone(), None, "Q5_K")  # same content, another tensor
    assert calls == ["Q5_K"]
    assert torch.equal(first.blocks, second.blocks)
    second.blocks.zero_()  # each module owns its bytes
    assert not torch.equal(first.blocks, second.blocks)
    GgufLinear.from_weight(w, None, "Q4_K")
    GgufLinear.from_weight(w + 1e-3, None, "Q5_K")
    assert calls == ["Q5_K", "Q4_K", "Q5_K"]  # another type or another weight is encoded anew
