"""--format devicefit: devicefit loads it; plain transformers refuses it instead of loading random weights."""

import json

import pytest
import torch
import transformers

from search.compress import apply
from search.exporters import export_model
from search.models import load_graph, load_model
from search.recipe import CompressionConfig as C
from tests.compress.helpers import outputs, token_batch
from tests.export.helpers import tiny_loaded


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    loaded = tiny_loaded("llama")
    recipe = C.uniform(bits=4, group_size=32, width=0.5)
    compressed = apply(loaded.model, recipe)
    out = export_model(loaded, compressed, recipe, tmp_path_factory.mktemp("exports") / "df", "devicefit")
    return out, compressed


@pytest.mark.parametrize("load", [transformers.AutoModel.from_pretrained,
                                  transformers.AutoModelForCausalLM.from_pretrained,
                                  transformers.AutoConfig.from_pretrained])
def test_auto_classes_refuse_with_what_to_do(export_dir, load):
    with pytest.raises(ValueError, match=r"not a transformers checkpoint: load it with search\.load_compressed"):
        load(export_dir[0])


def test_the_architecture_class_finds_no_weights_to_load_at_random(export_dir):
    with pytest.raises(OSError, match="no file named model.safetensors"):
        transformers.LlamaForCausalLM.from_pretrained(export_dir[0])


def test_devicefit_still_loads_it(export_dir):
    out, compressed = export_dir
    ids = token_batch()
    assert torch.equal(outputs(load_model(str(out)).model, ids), outputs(compressed, ids))
    assert load_graph(str(out)).model_type == "llama"  # the original config, not the refusing stub


def test_a_version_1_export_still_loads(export_dir, tmp_path):
    """Version 1 kept the original config as config.json and the weights as model.safetensors."""
    out, compressed = export_dir
    old = tmp_path / "v1"
    old.mkdir()
    for f in out.iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    (old / "devicefit_config.json").rename(old / "config.json")
    (old / "devicefit.safetensors").rename(old / "model.safetensors")
    meta = json.loads((old / "devicefit.json").read_text())
    meta["version"] = 1
    for key in ("weights", "config"):
        meta.pop(key)
    (old / "devicefit.json").write_text(json.dumps(meta))
    ids = token_batch()
    assert torch.equal(outputs(load_model(str(old)).model, ids), outputs(compressed, ids))
