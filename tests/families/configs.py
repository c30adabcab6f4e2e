"""Small random-init configs of the newer families (the older ones are in tests/conftest.py).

Shapes match the older tiny configs (hidden 64, 4 query heads in 2 key/value
groups, 176 MLP neurons, vocabulary 384) so the shared helpers apply; each config
keeps its family's particularities switched on at a scale the tests reach:
Gemma's head_dim is not hidden/heads, its sliding windows (8 tokens) are shorter
than the test sequences, Gemma 2 soft-caps, Gemma 3 alternates local and global
blocks by a pattern, Phi-3's fused projections hold grouped key/value heads.
"""

NEW_FAMILIES = ["gemma2", "gemma3_text", "qwen3", "phi3", "mistral"]

_COMMON = dict(hidden_size=64, intermediate_size=176, num_attention_heads=4, num_key_value_heads=2,
               vocab_size=384, max_position_embeddings=256)


def family_config(model_type: str, **overrides) -> dict:
    base = {
        "gemma2": dict(_COMMON, model_type="gemma2", num_hidden_layers=4, head_dim=24, sliding_window=8,
                       query_pre_attn_scalar=24, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                       pad_token_id=0, bos_token_id=2, eos_token_id=1),
        "gemma3_text": dict(_COMMON, model_type="gemma3_text", num_hidden_layers=4, head_dim=24, sliding_window=8,
                            sliding_window_pattern=2, query_pre_attn_scalar=24, pad_token_id=0, bos_token_id=2,
                            eos_token_id=1),
        "qwen3": dict(_COMMON, model_type="qwen3", num_hidden_layers=3, head_dim=16, tie_word_embeddings=True),
        "phi3": dict(_COMMON, model_type="phi3", num_hidden_layers=3, pad_token_id=0, bos_token_id=1,
                     eos_token_id=2),
        "mistral": dict(_COMMON, model_type="mistral", num_hidden_layers=3, sliding_window=8),
    }[model_type]
    base.update(overrides)
    return base


def any_config(model_type: str, **overrides) -> dict:
    """A tiny config of any supported family, old or new."""
    if model_type in NEW_FAMILIES:
        return family_config(model_type, **overrides)
    from tests.conftest import tiny_config

    return tiny_config(model_type, **overrides)


def family_model(model_type: str, **overrides):
    """A random-init model of any supported family (seeded)."""
    import torch

    from search.models import build_from_config

    torch.manual_seed(0)
    return build_from_config(any_config(model_type, **overrides))


ALL_FAMILIES = ["llama", "qwen2", "gpt2", "bert", *NEW_FAMILIES]
