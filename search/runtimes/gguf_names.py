"""Per family: the llama.cpp architecture, GGUF tensor names and hyper-parameters of a (compressed) model.

Tensor names come from the ``gguf`` package's own map (Hugging Face module name
-> GGUF name). Hyper-parameters are read from the model's real modules, never
from the original config: a width-pruned model has fewer heads and a narrower
MLP, a depth-pruned one fewer blocks, and llama.cpp must build exactly that.

One fact from llama.cpp's converter that is easy to miss: its LLAMA architecture
rotates adjacent pairs of a head's dimensions (RoPE "normal" mode), while Hugging
Face Llama rotates the first half against the second. The converter therefore
reorders the rows of q and k inside each head; Qwen2 runs in llama.cpp's NEOX
mode (halves, like Hugging Face) and needs no reordering; so do QWEN3 and PHI3. Mistral
is Llama's graph (llama.cpp runs it as LLAMA). Phi-3 keeps its fused q|k|v and
gate|up tensors: llama.cpp's PHI3 graph reads them fused (attn_qkv, ffn_up). Reordering whole rows
keeps quantized rows intact: a GGUF row is independent of every other row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search.errors import ModelError
from search.runtimes.gguf_gemma import is_gemma, write_gemma_keys
from search.space.families import FAMILIES


@dataclass(frozen=True)
class GgufFamily:
    family: str  # devicefit's family name
    arch: str  # the member of gguf.MODEL_ARCH
    pair_rotary_rows: bool  # q/k rows reordered from HF's half rotation to llama.cpp's pair rotation
    causal: bool


GGUF_FAMILIES: dict[str, GgufFamily] = {
    "llama": GgufFamily("llama", "LLAMA", True, True),
    "qwen2": GgufFamily("qwen2", "QWEN2", False, True),
    "bert": GgufFamily("bert", "BERT", False, False),
    "gpt2": GgufFamily("gpt2", "GPT2", False, True),
    "mistral": GgufFamily("mistral", "LLAMA", True, True),
    "qwen3": GgufFamily("qwen3", "QWEN3", False, True),
    "phi3": GgufFamily("phi3", "PHI3", False, True),
    "gemma2": GgufFamily("gemma2", "GEMMA2", False, True),
    "gemma3": GgufFamily("gemma3", "GEMMA3", False, True),
}
# llama.cpp graphs sized by heads x head size, not by the hidden size
ANY_HEAD_COUNT_ARCHS = ("LLAMA", "QWEN3", "GEMMA2", "GEMMA3")
SLIDING_WINDOW_FAMILIES = ("gemma2", "gemma3")  # llama.cpp runs their windows (search.runtimes.gguf_gemma)


def gguf_family(family: str) -> GgufFamily:
    if family not in GGUF_FAMILIES:
        raise ModelError(f"GGUF export supports the {', '.join(sorted(GGUF_FAMILIES))} families, not {family!r}")
    return GGUF_FAMILIES[family]


def gguf_family_for(family: str, shapes: Shapes) -> GgufFamily:
    """The llama.cpp architecture that runs this model as it is.

    llama.cpp's QWEN2, BERT and GPT2 graphs assume heads x head size = hidden size. A
    head-pruned Qwen2 (Llama plus q/k/v biases and half rotation) therefore runs as
    LLAMA, which takes any head count and the biases, with its q/k rows reordered
    for LLAMA's pair rotation. A head-pruned BERT, GPT-2 or Phi-3 has no such twin in llama.cpp
    (PHI3's output projection is hidden x hidden).
    """
    fam = gguf_family(family)
    if fam.arch in ANY_HEAD_COUNT_ARCHS or shapes.head_count * shapes.head_dim == shapes.embedding_length:
        return fam
    if family == "qwen2":
        return GgufFamily("qwen2", "LLAMA", True, True)
    raise ModelError(f"llama.cpp's {fam.arch} graph needs all attention heads ({shapes.embedding_length} = heads x "
                     f"head size), this model keeps {shapes.head_count} of size {shapes.head_dim}; "
                     f"export head-pruned {family} models in the hf or devicefit format")


def arch_name(fam: GgufFamily) -> str:
    """The architecture string llama.cpp reads from general.architecture (e.g. 'llama')."""
    import gguf

    return gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, fam.arch)]


def tensor_name_map(fam: GgufFamily, n_blocks: int) -> Any:
    import gguf

    return gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, fam.arch), n_blocks)


def gguf_tensor_name(names: Any, hf_name: str) -> str:
    """'model.layers.0.self_attn.q_proj.weight' -> 'blk.0.attn_q.weight' (ModelError when unknown)."""
    for suffix in (".weight", ".bias"):
        if hf_name.endswith(suffix):
            base = names.get_name(hf_name[: -len(suffix)])
            if base is not None:
                return base + suffix
    raise ModelError(f"tensor {hf_name!r} has no GGUF name in llama.cpp's map for this architecture")


def pair_rotary_rows(rows: Any, n_heads: int) -> Any:
    """Reorder rows (of q or k, any trailing shape) from HF half-rotation to llama.cpp pair-rotation order.

    Within each head of d rows, row j of the first half and row j of the second half
    become neighbours: [h0, h1, ..., h_{d/2-1}, g0, ...] -> [h0, g0, h1, g1, ...].
    """
    head_dim = rows.shape[0] // n_heads
    if head_dim * n_heads != rows.shape[0] or head_dim % 2:
        raise ModelError(f"{rows.shape[0]} rows do not split into {n_heads} heads of an even size")
    rest = tuple(rows.shape[1:])
    return rows.reshape(n_heads, 2, head_dim // 2, *rest).swapaxes(1, 2).reshape(rows.shape)


@dataclass(frozen=True)
class Shapes:
    """The hyper-parameters llama.cpp needs, measured on the model's modules."""

    block_count: int
    embedding_length: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    vocab_size: int
    context_length: int


def _out(module: Any) -> int:
    if type(module).__name__ == "Conv1D":  # GPT-2 before compression: weight [in, out]
        return int(module.nf)
    return int(module.out_features)


def blocks_of(model: Any, family: str) -> list[Any]:
    prefix = FAMILIES[family].block_prefix.removesuffix(".{i}")
    return list(model.get_submodule(prefix))


def head_dim_of(config: Any) -> int:
    explicit = getattr(config, "head_dim", None)
    return int(explicit) if explicit else int(config.hidden_size) // int(config.num_attention_heads)


def measure_shapes(model: Any, family: str) -> Shapes:
    """Shapes of the model as it is (after width/heads/depth pruning): every block must agree."""
    fam = FAMILIES[family]
    blocks = blocks_of(model, family)
    if not blocks:
        raise ModelError("the model has no transformer blocks")
    layers = fam.block_layers

    config = model.config
    # GPT-2 has no grouped KV heads (and head pruning leaves its config's head count as it was): thirds
    kv_heads = int(getattr(config, "num_key_value_heads", None) or 1)
    q_heads = int(config.num_attention_heads) if getattr(config, "num_key_value_heads", None) else 1

    def attention_rows(block: Any) -> tuple[int, int]:
        if "qkv" in layers:  # fused q|k|v (GPT-2, Phi-3): q rows, k rows, v rows in the heads' ratio
            rows = _out(block.get_submodule(layers["qkv"]))
            per_kv = rows // (q_heads + 2 * kv_heads)
            return per_kv * q_heads, per_kv * kv_heads
        return _out(block.get_submodule(layers["q"])), _out(block.get_submodule(layers["k"]))

    def mlp_rows(block: Any) -> int:
        if "gate_up" in layers:  # Phi-3: gate rows then up rows, one neuron each
            return _out(block.get_submodule(layers["gate_up"])) // 2
        return _out(block.get_submodule(layers["gate" if "gate" in layers else "fc1"]))

    per_block = {(*attention_rows(b), mlp_rows(b)) for b in blocks}
    if len(per_block) != 1:
        raise ModelError(f"blocks have different shapes {sorted(per_block)}; GGUF export needs uniform blocks")
    q_rows, k_rows, ff = per_block.pop()
    head_dim = head_dim_of(config)
    embed = model.get_input_embeddings()
    hidden = int(embed.embedding_dim if hasattr(embed, "embedding_dim") else embed.weight.shape[1])
    vocab = int(embed.num_embeddings if hasattr(embed, "num_embeddings") else embed.weight.shape[0])
    return Shapes(block_count=len(blocks), embedding_length=hidden, feed_forward_length=ff,
                  head_count=q_rows // head_dim, head_count_kv=k_rows // head_dim, head_dim=head_dim,
                  vocab_size=vocab, context_length=full_attention_context(config, family))


def full_attention_context(config: Any, family: str) -> int:
    """The context llama.cpp's graph reproduces: the model's, capped at its sliding window.

    llama.cpp's LLAMA (Mistral), QWEN3 and PHI3 graphs attend to every earlier
    token (PHI3 turns a sliding window off explicitly), so a model with a shorter
    window gives the same logits only up to that many tokens; the file says so
    through its context length.
    """
    context = int(config.max_position_embeddings)
    if family in SLIDING_WINDOW_FAMILIES:
        return context
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        window = None  # Qwen3: a window in the config that no block uses
    return min(context, int(window)) if window else context


def rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    kind = params.get("rope_type", getattr(config, "rope_scaling", None) or "default")
    if kind not in ("default", None):
        raise ModelError(f"RoPE scaling {kind!r} is not exported to GGUF yet; only plain RoPE is")
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def rotary_dims(config: Any, head_dim: int) -> int:
    """How many of a head's dimensions RoPE rotates (Phi-3 may rotate a part)."""
    params = getattr(config, "rope_parameters", None) or {}
    factor = params.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None)) or 1.0
    return int(head_dim * float(factor))


def write_architecture(writer: Any, model: Any, fam: GgufFamily, shapes: Shapes) -> None:
    """The llama.cpp hyper-parameters (general.architecture is set by the writer itself)."""
    config = model.config
    writer.add_block_count(shapes.block_count)
    writer.add_context_length(shapes.context_length)
    writer.add_embedding_length(shapes.embedding_length)
    writer.add_feed_forward_length(shapes.feed_forward_length)
    writer.add_head_count(shapes.head_count)
    writer.add_head_count_kv(shapes.head_count_kv)
    # explicit: after head pruning, hidden / heads is no longer the head size
    writer.add_key_length(shapes.head_dim)
    writer.add_value_length(shapes.head_dim)
    writer.add_vocab_size(shapes.vocab_size)
    if fam.arch == "GPT2":  # learned positions, LayerNorm
        writer.add_layer_norm_eps(float(config.layer_norm_epsilon))
    elif fam.causal:
        writer.add_rope_dimension_count(rotary_dims(config, shapes.head_dim))
        if is_gemma(fam.arch):
            write_gemma_keys(writer, model, fam.arch)
        else:
            writer.add_rope_freq_base(rope_theta(config))
        writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    else:
        import gguf

        writer.add_layer_norm_eps(float(config.layer_norm_eps))
        writer.add_causal_attention(False)
        writer.add_token_type_count(int(getattr(config, "type_vocab_size", 1)))
        writer.add_pooling_type(gguf.PoolingType.MEAN)  # sentence-transformers encoders pool by the mean
