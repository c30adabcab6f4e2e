"""export_model: each format goes to its writer; gguf takes a file or a directory; unknown names are refused."""

import pytest

from search.compress import apply
from search.errors import DeviceFitError
from search.exporters import default_format, export_model
from search.recipe import parse_recipe
from tests.export.helpers import tiny_loaded


def test_gguf_goes_to_the_gguf_writer_with_the_recipe_types(tmp_path):
    import gguf  # the test extra's GGUF reader
    loaded = tiny_loaded("llama", intermediate_size=192)
    recipe = parse_recipe({"layers": {"_default": {"format": "Q8_0"}}})
    compressed = apply(loaded.model, recipe)
    in_dir = export_model(loaded, compressed, recipe, tmp_path / "dir", "gguf")
    as_file = export_model(loaded, compressed, recipe, tmp_path / "named.gguf", "GGUF")
    assert in_dir == tmp_path / "dir" / "model.gguf" and as_file == tmp_path / "named.gguf"
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(as_file)).tensors}
    assert types["blk.0.ffn_down.weight"] == "Q8_0" and types["blk.0.attn_q.weight"] == "Q8_0"
    assert in_dir.read_bytes() == as_file.read_bytes()


def test_unknown_format_and_defaults():
    loaded = tiny_loaded("llama")
    with pytest.raises(DeviceFitError, match="unknown export format 'onnx'; use one of gguf, hf, devicefit"):
        export_model(loaded, loaded.model, parse_recipe({}), "x", "onnx")
    assert default_format("llama.cpp (CPU, 4 threads)") == "gguf"
    assert default_format("MLC LLM (CUDA, q4f16 kernels)") == default_format(None) == "hf"
