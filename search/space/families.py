"""Architecture families devicefit understands: how their layers are named and shaped.

Each family maps a transformers ``model_type`` to the names of its compressible
linear layers (templates with ``{i}`` for the block index), their roles, and the
parameters that are not compressible (embeddings, norms) so memory can be
computed exactly from a config.json alone.

Fused projections (Phi-3) are one layer with a fused role: ``qkv`` holds the
query rows, then the key rows, then the value rows (GPT-2's c_attn too);
``gate_up`` holds the gate rows, then the up rows. Width pruning slices every
part of a fused layer consistently.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.errors import ModelError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    is_causal: bool
    weight_layout: str  # "linear": [out, in]; "conv1d": [in, out] (GPT-2)
    block_prefix: str  # module path of block i, with {i}
    # role -> module suffix under the block
    block_layers: dict[str, str]
    lm_head: str | None
    gated_mlp: bool = False  # act(gate(x)) * up(x): SwiGLU (Llama) or GeGLU (Gemma)
    # per-block norms beyond the usual pre-attention and pre-MLP ones (Gemma's sandwich norms)
    extra_block_norms: tuple[str, ...] = ()
    qk_norm: bool = False  # per-head RMSNorm on queries and keys (Qwen3, Gemma 3)
    tied_by_default: bool = False  # tie_word_embeddings when a config does not say


LLAMA_LIKE_LAYERS = {
    "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj",
}
PHI3_LAYERS = {"qkv": "self_attn.qkv_proj", "o": "self_attn.o_proj",
               "gate_up": "mlp.gate_up_proj", "down": "mlp.down_proj"}
GEMMA_NORMS = ("pre_feedforward_layernorm", "post_feedforward_layernorm")


def _llama_like(name: str, model_type: str, layers: dict[str, str] = LLAMA_LIKE_LAYERS, **extra) -> Family:
    return Family(name, (model_type,), True, "linear", "model.layers.{i}", layers, "lm_head", gated_mlp=True,
                  **extra)


FAMILIES: dict[str, Family] = {
    "llama": _llama_like("llama", "llama"),
    "qwen2": _llama_like("qwen2", "qwen2"),
    "qwen3": _llama_like("qwen3", "qwen3", qk_norm=True),
    "mistral": _llama_like("mistral", "mistral"),
    "phi3": _llama_like("phi3", "phi3", PHI3_LAYERS),
    "gemma2": _llama_like("gemma2", "gemma2", extra_block_norms=GEMMA_NORMS, tied_by_default=True),
    "gemma3": _llama_like("gemma3", "gemma3_text", extra_block_norms=GEMMA_NORMS, qk_norm=True,
                          tied_by_default=True),
    "gpt2": Family("gpt2", ("gpt2",), True, "conv1d", "transformer.h.{i}",
                   {"qkv": "attn.c_attn", "o": "attn.c_proj", "fc1": "mlp.c_fc", "fc2": "mlp.c_proj"}, "lm_head"),
    "bert": Family("bert", ("bert",), False, "linear", "encoder.layer.{i}",
                   {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                    "o": "attention.output.dense", "fc1": "intermediate.dense", "fc2": "output.dense"}, None),
}

# Roles grouped by what width pruning slices.
HEAD_OUTPUT_ROLES = ("q", "k", "v", "qkv")  # outputs are heads
HEAD_INPUT_ROLES = ("o",)  # inputs are heads
MLP_OUTPUT_ROLES = ("gate", "up", "fc1", "gate_up")  # outputs are neurons (gate_up: each neuron twice)
MLP_INPUT_ROLES = ("down", "fc2")  # inputs are neurons


def supported_model_types() -> list[str]:
    return sorted(t for f in FAMILIES.values() for t in f.model_types)


def family_for(model_type: str | None) -> Family:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    hint = ("; for Gemma 3 give the text model's config (model_type 'gemma3_text', e.g. Gemma-3-1B)"
            if model_type == "gemma3" else "")
    raise ModelError(f"unsupported architecture {model_type!r}; devicefit supports model_type "
                     f"{', '.join(supported_model_types())}{hint}")
