"""Shared fixtures: small models built from configs (no download) and the demo encoder."""

import os

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def tiny_config(model_type: str, **overrides) -> dict:
    """config.json dicts of very small models of each supported family."""
    base = {
        "llama": dict(model_type="llama", hidden_size=64, intermediate_size=176, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, vocab_size=384,
                      max_position_embeddings=256, tie_word_embeddings=False),
        "qwen2": dict(model_type="qwen2", hidden_size=64, intermediate_size=176, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, vocab_size=384,
                      max_position_embeddings=256, tie_word_embeddings=True),
        "gpt2": dict(model_type="gpt2", n_embd=64, n_layer=3, n_head=4, vocab_size=384, n_positions=256,
                     bos_token_id=0, eos_token_id=0),
        "bert": dict(model_type="bert", hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=160, vocab_size=384, max_position_embeddings=256),
    }[model_type]
    base.update(overrides)
    return base


@pytest.fixture(params=["llama", "qwen2", "gpt2", "bert"])
def family_config(request) -> dict:
    return tiny_config(request.param)


@pytest.fixture(scope="session")
def minilm():
    from search.models import load_model

    return load_model("demo:minilm")


@pytest.fixture(scope="session")
def tiny_llama():
    """A LoadedModel: small Llama with random weights and a byte tokenizer."""
    import torch

    from search.models import ByteTokenizer, LoadedModel, build_from_config
    from search.space.graph import graph_from_model

    torch.manual_seed(0)
    model = build_from_config(tiny_config("llama"))
    return LoadedModel(ref="tiny-llama", model=model, tokenizer=ByteTokenizer(384), graph=graph_from_model(model))


# ---- private services (tests/support/services.py): started here, never a system service -----------

def started(server):
    """server.start(), or a test failure saying what is missing (a required service never skips)."""
    from tests.support.services import ServiceUnavailable

    try:
        return server.start()
    except ServiceUnavailable as exc:
        pytest.fail(f"cannot start a private {type(server).__name__}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_url():
    """A private PostgreSQL cluster for the session; tests make their own schema or database in it."""
    from tests.support.services import PostgresServer

    server = started(PostgresServer())
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory):
    """A private redis-server for the session (tests that restart Redis start their own)."""
    from tests.support.services import RedisServer

    server = started(RedisServer(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()
