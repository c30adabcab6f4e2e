"""load_model: local directories, a Hub id from the local cache, the bundled demo, and one-line errors."""

import json

import pytest
import torch

from search.errors import ModelError
from search.models import ByteTokenizer, build_from_config, load_graph, load_model
from tests.conftest import tiny_config


def test_local_directory_loads_offline_with_the_same_outputs(tmp_path):
    original = build_from_config(tiny_config("qwen2"), seed=3)
    original.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    assert isinstance(loaded.tokenizer, ByteTokenizer)  # no tokenizer files: bytes
    assert loaded.graph.family == "qwen2" and loaded.source_dir == tmp_path
    ids = torch.randint(0, 256, (1, 12))
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, original(ids).logits)


def test_hub_id_loads_from_the_local_cache(tmp_path, monkeypatch):
    # the layout huggingface_hub uses: models--org--name/{refs/main, snapshots/<revision>/...}
    repo = tmp_path / "hub" / "models--someone--tiny-llama"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    build_from_config(tiny_config("llama"), seed=1).save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    assert load_graph("someone/tiny-llama").family == "llama"
    assert load_model("someone/tiny-llama").graph.num_blocks == 4


def test_demo_minilm_is_the_real_encoder(minilm):
    assert minilm.graph.family == "bert" and minilm.graph.num_blocks == 6 and minilm.graph.hidden_size == 384
    assert minilm.tokenizer.cls_token_id is not None  # its own WordPiece tokenizer
    assert not any("pooler" in name for name, _ in minilm.model.named_parameters())
    # trained weights, not an initialisation: paraphrases embed closer than unrelated sentences
    def embed(text):
        ids = torch.tensor([minilm.tokenizer.encode(text)])
        with torch.no_grad():
            return minilm.model(ids).last_hidden_state[0].mean(0)

    cat, kitten, stocks = embed("a cat sat on the mat"), embed("a kitten rested on the rug"), embed(
        "the stock market fell sharply today")
    assert torch.cosine_similarity(cat, kitten, dim=0) > torch.cosine_similarity(cat, stocks, dim=0) + 0.2


def test_bad_references_are_one_line_model_errors(tmp_path):
    def refused(ref: str) -> str:
        with pytest.raises(ModelError) as info:
            load_model(ref)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "does not exist" in refused(str(tmp_path / "missing"))
    assert "has no config.json" in refused(str(tmp_path))
    (tmp_path / "mamba").mkdir()
    (tmp_path / "mamba" / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    assert "unsupported architecture 'mamba'" in refused(str(tmp_path / "mamba"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert "not valid JSON" in refused(str(tmp_path / "broken"))
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text(json.dumps(tiny_config("llama")))
    assert "cannot load weights" in refused(str(tmp_path / "noweights"))
    assert "unknown demo model 'demo:nope'" in refused("demo:nope")
    assert "no Hub model of that name" in refused("nobody/not-cached-model")  # HF_HUB_OFFLINE=1 in the suite
