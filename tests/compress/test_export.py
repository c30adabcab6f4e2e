"""Export writes the packed state as it is; reloading gives identical outputs and the predicted size."""

import json
from pathlib import Path

import pytest
import torch

from search.compress import apply
from search.compress import export as export_module
from search.compress.export import export_compressed, load_compressed
from search.errors import DeviceFitError, ModelError
from search.memory import memory_report
from search.models import ByteTokenizer, LoadedModel, load_model
from search.recipe import CompressionConfig as C
from search.space.graph import graph_from_model
from tests.compress.helpers import outputs, tiny_model, token_batch

# safetensors' file = 8-byte length + JSON header (names, dtypes, shapes, offsets) + the raw tensor bytes.
# The header is well under 64 KiB for these models; that is the fixed allowance besides the 1%.
HEADER_ALLOWANCE = 64 * 1024


def _loaded(family: str) -> LoadedModel:
    model = tiny_model(family)
    return LoadedModel(ref=f"tiny-{family}", model=model, tokenizer=ByteTokenizer(384), graph=graph_from_model(model))


def _check_round_trip(loaded, recipe, out: Path, ids):
    compressed = apply(loaded.model, recipe)
    export_compressed(loaded, compressed, recipe, out)
    files = {"devicefit.safetensors", "recipe.json", "config.json", "devicefit_config.json", "devicefit.json"}
    assert files <= {p.name for p in out.iterdir()}
    assert json.loads((out / "devicefit_config.json").read_text())["model_type"] == loaded.graph.model_type
    reloaded = load_model(str(out))  # search.models sees recipe.json and calls load_compressed
    assert torch.equal(outputs(reloaded.model, ids), outputs(compressed, ids))
    expected = memory_report(loaded.graph, recipe).total_bytes
    size = (out / "devicefit.safetensors").stat().st_size
    assert expected <= size <= expected * 1.01 + HEADER_ALLOWANCE
    return reloaded


@pytest.mark.parametrize("family,recipe", [
    ("llama", C.uniform(bits=3, group_size=16, width=0.5, heads=0.5, keep_blocks=(0, 3))),
    ("qwen2", C.uniform(bits=4, sparsity=0.5, sparsity_pattern="2:4", rank=0.5)),
    ("gpt2", C.uniform(bits=5, symmetric=True, sparsity=0.25, sparsity_pattern="channel")),
    ("bert", C.uniform(sparsity=0.6, keep_blocks=(1,))),
])
def test_round_trip_identical_outputs(tmp_path, family, recipe):
    _check_round_trip(_loaded(family), recipe, tmp_path / "export", token_batch())


def test_minilm_round_trip_with_tokenizer(tmp_path, minilm):
    out = tmp_path / "minilm-4bit"
    reloaded = _check_round_trip(minilm, C.uniform(bits=4), out, token_batch(2, 16, vocab=30522))
    assert (out / "tokenizer.json").is_file() or (out / "vocab.txt").is_file()
    assert reloaded.tokenizer("hello world")["input_ids"] == minilm.tokenizer("hello world")["input_ids"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    loaded = _loaded("bert")
    compressed = apply(loaded.model, C.uniform(bits=8))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        export_compressed(loaded, compressed, C.uniform(bits=8), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_overwrites_an_old_export_but_not_other_directories(tmp_path):
    loaded = _loaded("bert")
    recipe = C.uniform(bits=8)
    compressed = apply(loaded.model, recipe)
    out = export_compressed(loaded, compressed, recipe, tmp_path / "out")
    export_compressed(loaded, compressed, recipe, out)  # replacing an export is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DeviceFitError, match="not an export of this format"):
        export_compressed(loaded, compressed, recipe, other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_tampered_export_is_a_one_line_error(tmp_path):
    loaded = _loaded("bert")
    out = export_compressed(loaded, apply(loaded.model, C.uniform(bits=8)), C.uniform(bits=8), tmp_path / "o")
    (out / "recipe.json").write_text(C.uniform(bits=4).to_json())
    with pytest.raises(ModelError, match="does not match its recipe"):
        load_compressed(out)
    assert export_module.FORMAT_VERSION == 2
