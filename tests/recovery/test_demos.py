"""demo:tinylm: a seeded, cached, atomically written Hugging Face directory (small variants for speed)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from search import demos
from search.models import load_model


def test_small_build_is_a_loadable_hf_directory_and_cached(tmp_path):
    recipe = demos.small_recipe(steps=4)
    path = demos.tinylm_dir(recipe, root=tmp_path, progress=False)
    assert path == tmp_path / f"tinylm-{recipe.key()}" and demos.is_built(path)
    info = json.loads((path / "build.json").read_text())
    assert info["recipe"]["steps"] == 4 and info["key"] == recipe.key()
    assert not list(tmp_path.glob(".tinylm*"))  # no temporary directory left behind
    loaded = load_model(str(path))
    assert loaded.graph.family == "llama" and loaded.graph.vocab_size == 256
    assert loaded.tokenizer.encode("hi") == [104, 105]  # byte tokens
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert demos.tinylm_dir(recipe, root=tmp_path, progress=False) == path  # cached: not rebuilt
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_build_is_deterministic_for_a_seed(tmp_path):
    recipe = demos.small_recipe(steps=3)
    a = demos.build_tinylm(recipe, tmp_path / "a", progress=False)
    b = demos.build_tinylm(recipe, tmp_path / "b", progress=False)
    c = demos.build_tinylm(demos.small_recipe(steps=3, seed=1), tmp_path / "c", progress=False)
    wa, wb, wc = (load_file(str(p / "model.safetensors")) for p in (a, b, c))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert not all(torch.allclose(wa[k], wc[k]) for k in wa)


def test_training_lowers_the_loss():
    model, losses = demos.train_tinylm(demos.small_recipe(steps=25), progress=False)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_cache_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DEVICEFIT_CACHE", str(tmp_path))
    assert demos.tinylm_path() == tmp_path / "tinylm"
    assert demos.DEFAULT_RECIPE.key() == demos.TinyLMRecipe(threads=1).key()  # threads do not key the cache


@pytest.mark.slow
def test_full_default_build(tmp_path):
    path = demos.tinylm_dir(root=tmp_path, progress=False)
    info = json.loads((path / "build.json").read_text())
    assert info["params"] > 4_000_000 and info["final_loss"] < 2.0
