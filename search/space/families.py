"""Architecture families devicefit understands: how their layers are named and shaped.

Each family maps a transformers ``model_type`` to the names of its compressible
linear layers (templates with ``{i}`` for the block index), their roles, and the
parameters that are not compressible (embeddings, norms) so memory can be
computed exactly from a config.json alone.
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


LLAMA_LIKE_LAYERS = {
    "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj",
}

FAMILIES: dict[str, Family] = {
    "llama": Family("llama", ("llama",), True, "linear", "model.layers.{i}", LLAMA_LIKE_LAYERS, "lm_head"),
    "qwen2": Family("qwen2", ("qwen2",), True, "linear", "model.layers.{i}", LLAMA_LIKE_LAYERS, "lm_head"),
    "gpt2": Family("gpt2", ("gpt2",), True, "conv1d", "transformer.h.{i}",
                   {"qkv": "attn.c_attn", "o": "attn.c_proj", "fc1": "mlp.c_fc", "fc2": "mlp.c_proj"}, "lm_head"),
    "bert": Family("bert", ("bert",), False, "linear", "encoder.layer.{i}",
                   {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                    "o": "attention.output.dense", "fc1": "intermediate.dense", "fc2": "output.dense"}, None),
}

# Roles grouped by what width pruning slices.
HEAD_OUTPUT_ROLES = ("q", "k", "v", "qkv")  # outputs are heads
HEAD_INPUT_ROLES = ("o",)  # inputs are heads
MLP_OUTPUT_ROLES = ("gate", "up", "fc1")  # outputs are neurons
MLP_INPUT_ROLES = ("down", "fc2")  # inputs are neurons


def supported_model_types() -> list[str]:
    return sorted(t for f in FAMILIES.values() for t in f.model_types)


def family_for(model_type: str | None) -> Family:
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise ModelError(f"unsupported architecture {model_type!r}; devicefit supports model_type "
                     f"{', '.join(supported_model_types())}")
