"""Runtime file types as recipes: llama.cpp's GGUF file types and MLC's group-quantization modes.

A file type is not one format: it is a per-tensor mixture, and the mixture includes the token
embeddings and the output head. ``recipe_for_filetype(graph, name)`` returns the CompressionConfig
that stores each tensor of ``graph`` the way that runtime does, so memory and latency see the true
bits per weight of every tensor.

llama.cpp (facts from src/llama-quant.cpp, ``llama_ftype_get_default_type``,
``llama_tensor_get_type_impl`` and ``tensor_type_fallback``; the rules below are restated, not copied):
- every 2-D weight gets the file type's default GGML type; 1-D tensors (norms, biases) stay F32;
  F16 / BF16 files quantize nothing;
- the output head -- and the token embeddings when the model has no separate output tensor (tied,
  or an encoder) -- becomes Q6_K, unless the default type is Q8_0 (stays Q8_0) or the row length is
  not a multiple of the default type's block size (Q8_0);
- attn_v (and a fused attn_qkv): Q4_K_M / Q5_K_M -> Q6_K on "more bits" layers (the first and last
  eighth of the blocks and every third one between), Q4_K_S -> Q5_K on the first 4, Q3_K_M -> Q5_K
  on the first 2 else Q4_K, Q2_K -> Q4_K when n_heads / n_kv_heads >= 4 else Q3_K;
- ffn_down: Q4_K_M / Q5_K_M -> Q6_K on "more bits" layers, Q4_K_S -> Q5_K on the first eighth,
  Q3_K_M -> Q5_K on the first sixteenth else Q4_K, Q2_K -> Q3_K;
- attn_output: Q3_K_M -> Q4_K, Q2_K -> Q3_K;
- a row length that is not a multiple of the type's block falls back: Q2_K/Q3_K -> Q4_0,
  Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and to F16 when even 32 does not divide it.
Not modelled: importance-matrix variants, mixture-of-experts rules, Falcon, the 70B attn_v bump.

MLC LLM (its documented quantization modes, mlc_llm/quantization): ``qAfB_1`` is group quantization
with A-bit codes packed into uint32 words, one scale per group in the model dtype (B = 16: float16,
32: float32), no zero point, embeddings and the final projection quantized too.
- q4f16_1: 4-bit, groups of 32, fp16 scale: 4 + 16/32 = 4.5 bits per weight; expressed exactly.
- q4f32_1: 4-bit, groups of 32, fp32 scale: 4 + 32/32 = 5.0. devicefit's scales are fp16, so the
  recipe uses groups of 16 -- the same bytes, slightly finer numerics than MLC's.
- q3f16_1: 3-bit, groups of 40 (ten codes per uint32, 2 bits of padding): 32/10 + 16/40 = 3.6. The
  recipe is 3-bit, groups of 40, with a uint8 zero point -- the same bytes, not MLC's exact numerics.
- q0f16: no quantization (float16).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search.errors import RecipeError
from search.formats.ggml_types import GGML_TYPES

if TYPE_CHECKING:
    from search.recipe import CompressionConfig
    from search.space.graph import ModelGraph

# llama.cpp file type -> the GGML type of its ordinary 2-D weights
LLAMACPP_DEFAULT_TYPE = {
    "F16": "F16", "BF16": "BF16", "Q8_0": "Q8_0", "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K", "Q5_K_S": "Q5_K", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "Q4_K_M": "Q4_K", "Q4_K_S": "Q4_K", "Q4_0": "Q4_0", "Q4_1": "Q4_1",
    "Q3_K_M": "Q3_K", "Q3_K_S": "Q3_K", "Q2_K": "Q2_K",
}


@dataclass(frozen=True)
class MlcMode:
    """An MLC group-quantization mode and the devicefit layer setting with the same stored bytes."""

    name: str
    code_bits_per_weight: float  # after packing into uint32 words
    group_size: int | None
    scale_bits: int
    setting: dict  # LayerCompression fields

    @property
    def bits_per_weight(self) -> float:
        if self.group_size is None:
            return self.code_bits_per_weight
        return self.code_bits_per_weight + self.scale_bits / self.group_size


MLC_MODES = {m.name: m for m in (
    MlcMode("q4f16_1", 4.0, 32, 16, {"bits": 4, "group_size": 32, "symmetric": True}),
    MlcMode("q4f32_1", 4.0, 32, 32, {"bits": 4, "group_size": 16, "symmetric": True}),
    MlcMode("q3f16_1", 3.2, 40, 16, {"bits": 3, "group_size": 40, "symmetric": False}),
    MlcMode("q0f16", 16.0, None, 0, {"bits": 16}),
)}
ALIASES = {"q4f16": "q4f16_1"}

FILETYPES = (*LLAMACPP_DEFAULT_TYPE, *MLC_MODES)


def canonical_filetype(name: str) -> str:
    """The canonical spelling of a file type name (case-insensitive; q4f16 = q4f16_1), or a RecipeError."""
    key = name.strip()
    key = ALIASES.get(key.lower(), key)
    for known in FILETYPES:
        if known.lower() == key.lower():
            return known
    raise RecipeError(f"unknown file type {name!r}; use one of {', '.join(FILETYPES)} (q4f16 = q4f16_1)")


def runtime_of(name: str) -> str:
    return "mlc" if canonical_filetype(name) in MLC_MODES else "llama.cpp"


# ---- llama.cpp's per-tensor rules --------------------------------------------------

# devicefit layer roles -> llama.cpp tensor categories (unknown roles keep the default type)
ROLE_CATEGORY = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "qkv": "attn_qkv", "o": "attn_output",
                 "gate": "ffn_gate", "up": "ffn_up", "fc1": "ffn_up", "gate_up": "ffn_up",
                 "down": "ffn_down", "fc2": "ffn_down", "lm_head": "output"}
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def more_bits(i: int, n: int) -> bool:
    """llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _attn_v_rule(ftype: str, i: int, n: int, gqa: int) -> Callable[[str], str]:
    rules: dict[str, Callable[[str], str]] = {
        "Q2_K": lambda t: "Q4_K" if gqa >= 4 else "Q3_K",
        "Q3_K_M": lambda t: "Q5_K" if i < 2 else "Q4_K",
        "Q4_K_M": lambda t: "Q6_K" if more_bits(i, n) else t,
        "Q5_K_M": lambda t: "Q6_K" if more_bits(i, n) else t,
        "Q4_K_S": lambda t: "Q5_K" if i < 4 else t,
    }
    return rules.get(ftype, lambda t: t)


def _ffn_down_rule(ftype: str, i: int, n: int) -> Callable[[str], str]:
    rules: dict[str, Callable[[str], str]] = {
        "Q2_K": lambda t: "Q3_K",
        "Q3_K_M": lambda t: "Q5_K" if i < n // 16 else "Q4_K",
        "Q4_K_M": lambda t: "Q6_K" if more_bits(i, n) else t,
        "Q5_K_M": lambda t: "Q6_K" if more_bits(i, n) else t,
        "Q4_K_S": lambda t: "Q5_K" if i < n // 8 else t,
    }
    return rules.get(ftype, lambda t: t)


def _fit_row(gtype: str, row: int) -> str:
    """The type llama.cpp really writes for rows of `row` weights (its fallback for odd shapes)."""
    if row % GGML_TYPES[gtype].block_size == 0:
        return gtype
    gtype = FALLBACK.get(gtype, gtype)
    return gtype if row % GGML_TYPES[gtype].block_size == 0 else "F16"


def llamacpp_tensor_type(ftype: str, category: str, row: int, block: int | None, graph: ModelGraph) -> str:
    """GGML type llama.cpp's quantizer gives a 2-D tensor of `category` (rows of `row` weights) in block `block`.

    category: a ROLE_CATEGORY value, "token_embd", or anything else (kept at the default type).
    """
    ftype = canonical_filetype(ftype)
    default = LLAMACPP_DEFAULT_TYPE[ftype]
    if not GGML_TYPES[default].quantized:
        return default
    has_output = any(layer.role == "lm_head" and not layer.tied for layer in graph.layers)
    n, i = graph.num_blocks, block or 0
    if category == "output" or (category == "token_embd" and not has_output):
        if row % GGML_TYPES[default].block_size:
            gtype = "Q8_0"
        else:
            gtype = default if default == "Q8_0" else "Q6_K"
    elif category in ("attn_v", "attn_qkv"):
        gtype = _attn_v_rule(ftype, i, n, graph.num_heads // max(1, graph.num_kv_heads))(default)
    elif category == "ffn_down":
        gtype = _ffn_down_rule(ftype, i, n)(default)
    elif category == "attn_output":
        gtype = {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K"}.get(ftype, default)
    else:
        gtype = default
    return _fit_row(gtype, row)


# ---- recipes --------------------------------------------------------------------------

def recipe_for_filetype(graph: ModelGraph, name: str) -> CompressionConfig:
    """The recipe storing every tensor of `graph` as file type `name` does, embeddings and output head included.

    llama.cpp types give each layer a GGUF ``format``; MLC modes give bits / group size (MlcMode).
    A tied output head follows the ``embedding`` entry, as it does in both runtimes.
    """
    from search.recipe import DEFAULT_KEY, parse_recipe

    ftype = canonical_filetype(name)
    if ftype in MLC_MODES:
        setting = MLC_MODES[ftype].setting
        return parse_recipe({"layers": {DEFAULT_KEY: setting}, "embedding": setting})
    default = LLAMACPP_DEFAULT_TYPE[ftype]
    layers: dict[str, dict] = {DEFAULT_KEY: {"format": default}}
    for layer in graph.layers:
        if layer.tied:
            continue  # it is the embedding matrix: the embedding entry below decides
        gtype = llamacpp_tensor_type(ftype, ROLE_CATEGORY.get(layer.role, "other"), layer.in_features,
                                     layer.block, graph)
        if gtype != default or layer.role == "lm_head":
            layers[layer.name] = {"format": gtype}
    embedding = llamacpp_tensor_type(ftype, "token_embd", graph.hidden_size, None, graph)
    return parse_recipe({"layers": layers, "embedding": {"format": embedding}})


def tensor_bytes(graph: ModelGraph, recipe: CompressionConfig) -> dict[str, tuple[int, int]]:
    """(weights, bytes) of every 2-D weight the recipe stores: each untied linear layer, and the token
    embeddings under "embedding" (a tied head is that same matrix, so it is not listed twice). No biases."""
    from search.memory import embedding_bytes, layer_weight_bytes

    settings = recipe.resolve(graph)
    out = {layer.name: (layer.in_features * layer.out_features,
                        layer_weight_bytes(layer.in_features, layer.out_features, False, settings[layer.name]))
           for layer in graph.layers if not layer.tied}
    out["embedding"] = (graph.vocab_size * graph.hidden_size, embedding_bytes(graph, recipe.embedding))
    return out


def bits_per_weight(graph: ModelGraph, name: str, *, only: Callable[[str], bool] = lambda key: True) -> float:
    """Mean true bits per weight of file type `name` on `graph` over the tensors whose key passes `only`."""
    sizes = [v for k, v in tensor_bytes(graph, recipe_for_filetype(graph, name)).items() if only(k)]
    return 8.0 * sum(b for _, b in sizes) / sum(w for w, _ in sizes)
