"""The public Python API: `import search` stays light, and the documented script flow works."""

import subprocess
import sys

import pytest

import search
from tests.conftest import tiny_config


def test_import_search_does_not_import_torch():
    code = ("import sys, search; search.CompressionConfig; search.parse_recipe; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves():
    for name in search.__all__:
        assert getattr(search, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        search.nope  # noqa: B018


def test_script_flow_load_recipe_apply_evaluate_export(tmp_path):
    import json

    import torch

    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config("llama")))
    loaded = search.load_model(str(config))
    recipe = search.parse_recipe({"layers": {"_default": {"bits": 4, "group_size": 16}}})
    policy = search.DataPolicy(eval_rows=2, calib_rows=2, seq_len=32)
    assert search.evaluate(loaded, policy=policy)["kl"] == pytest.approx(0.0, abs=1e-6)
    by_recipe = search.evaluate(loaded, recipe, policy)
    small = search.apply(loaded.model, recipe, search.calibration_batches(loaded.tokenizer, n=2, seq_len=32))
    by_model = search.evaluate(loaded, small, policy)
    assert by_recipe["kl"] == pytest.approx(by_model["kl"], rel=1e-6) and by_model["kl"] > 0
    out = search.export(loaded, recipe, tmp_path / "out", compressed=small)
    again = search.load_compressed(out)
    ids = search.calibration_batches(loaded.tokenizer, split="eval", n=1, seq_len=16)
    with torch.no_grad():
        assert torch.equal(again.model(ids).logits, small(ids).logits)
    assert search.memory_report(loaded.graph, recipe).total_bytes > 0
