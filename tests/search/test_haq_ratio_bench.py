"""bench/haq_ratio.py: it refuses to train a demo, and a retrained demo gets a fresh evaluation cache."""

from dataclasses import replace

from bench import haq_ratio
from search import demos


def test_an_unbuilt_trained_demo_is_refused_with_its_build_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEVICEFIT_CACHE", str(tmp_path))
    monkeypatch.setenv("DEVICEFIT_RESULTS", str(tmp_path / "results"))
    assert haq_ratio.unbuilt_demo("demo:smalllm") == "search-cli demo build smalllm"
    assert haq_ratio.unbuilt_demo("demo:minilm") is None and haq_ratio.unbuilt_demo("./my-llama") is None
    assert haq_ratio.main(["--model", "demo:smalllm", "--quick"]) == 2
    assert "search-cli demo build smalllm" in capsys.readouterr().err


def test_cache_tag_follows_the_demo_recipe(monkeypatch):
    tag = haq_ratio.cache_tag("demo:smalllm")
    assert tag == f"smalllm-{demos.SMALLLM_RECIPE.key()}"
    monkeypatch.setitem(demos.BUILT_DEMOS, "smalllm", replace(demos.SMALLLM_RECIPE, steps=1))
    assert haq_ratio.cache_tag("demo:smalllm") != tag
    assert "/" not in haq_ratio.cache_tag("/models/my-llama")
