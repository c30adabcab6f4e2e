"""What llama.cpp's GEMMA2 / GEMMA3 graphs need beyond a Llama-like file.

Facts from llama.cpp's gemma2/gemma3 graphs (read for this module):
- Gemma's RMSNorm multiplies by (1 + weight); llama.cpp multiplies by the stored
  weight, so every norm weight is stored plus one (q/k norms of Gemma 3 too).
- The embedding is scaled by sqrt(hidden) inside the graph, as in Hugging Face.
- Queries are scaled by 1/sqrt(head size) (by 1/sqrt(hidden / heads) for the 46-
  and 62-block models); Hugging Face scales by 1/sqrt(query_pre_attn_scalar), so the
  two must agree.
- Which blocks slide: an array of booleans, one per block (exact after depth pruning);
  the window length, Gemma 2's attention and final soft-caps, Gemma 3's RoPE base of
  the sliding blocks are keys of their own.
- GEMMA2 always reuses the embedding as the output head (no output tensor).
"""

from __future__ import annotations

from typing import Any

from search.errors import ModelError

GEMMA_ARCHS = ("GEMMA2", "GEMMA3")
LARGE_MODEL_BLOCKS = {"GEMMA2": 46, "GEMMA3": 62}  # llama.cpp's "27B" rule for the query scale


def is_gemma(arch: str) -> bool:
    return arch in GEMMA_ARCHS


def stored_norm_weight(module: Any, tensor: Any) -> Any:
    """Gemma's (1 + w) norm as llama.cpp's plain w."""
    return tensor.detach().float() + 1.0 if "RMSNorm" in type(module).__name__ else tensor


def _rope(params: dict, layer_type: str) -> float:
    entry = params.get(layer_type, params) if isinstance(params.get(layer_type), dict) else params
    kind = entry.get("rope_type", "default")
    if kind not in ("default", None):
        raise ModelError(f"RoPE scaling {kind!r} ({layer_type}) is not exported to GGUF yet; only plain RoPE is")
    return float(entry.get("rope_theta", 10000.0))


def check_gemma(model: Any, arch: str, block_count: int, hidden: int, heads: int, head_dim: int) -> None:
    config = model.config
    llama_cpp_scalar = hidden / heads if block_count == LARGE_MODEL_BLOCKS[arch] else head_dim
    if abs(float(config.query_pre_attn_scalar) - llama_cpp_scalar) > 1e-6:
        raise ModelError(f"llama.cpp's {arch} graph scales queries by 1/sqrt({llama_cpp_scalar:g}), this model by "
                         f"1/sqrt({config.query_pre_attn_scalar}); export it in the hf or devicefit format")
    if arch == "GEMMA2":
        head, embed = model.get_output_embeddings(), model.get_input_embeddings()
        if head is not None and getattr(head, "weight", None) is not getattr(embed, "weight", None):
            raise ModelError("llama.cpp's GEMMA2 graph reuses the embedding as the output head; this model's head "
                             "is its own (untied or compressed apart): export it in the hf or devicefit format")
    layer_types = list(getattr(config, "layer_types", None) or [])
    if len(layer_types) != block_count:
        raise ModelError(f"the config names {len(layer_types)} layer types for {block_count} blocks")


def write_gemma_keys(writer: Any, model: Any, arch: str) -> None:
    config = model.config
    params = getattr(config, "rope_parameters", None) or {}
    writer.add_rope_freq_base(_rope(params, "full_attention"))
    writer.add_rope_freq_base_swa(_rope(params, "sliding_attention"))
    writer.add_sliding_window(int(config.sliding_window))
    writer.add_sliding_window_pattern([t == "sliding_attention" for t in config.layer_types])
    if arch == "GEMMA2":  # its graph always soft-caps both (50 and 30 when the file does not say)
        caps = (getattr(config, "attn_logit_softcapping", None), getattr(config, "final_logit_softcapping", None))
        if not all(caps):
            raise ModelError("llama.cpp's GEMMA2 graph always soft-caps attention and final logits; this model "
                             "turns a soft-cap off: export it in the hf or devicefit format")
        writer.add_attn_logit_softcapping(float(caps[0]))
        writer.add_final_logit_softcapping(float(caps[1]))
    elif getattr(config, "attn_logit_softcapping", None):
        raise ModelError("llama.cpp's GEMMA3 graph has no attention soft-cap; this model sets one")
    elif getattr(config, "final_logit_softcapping", None):
        writer.add_final_logit_softcapping(float(config.final_logit_softcapping))
