"""devicefit's core library: fit a transformers model to a device's latency and memory budget.

The public Python API, for people who script::

    import search
    loaded = search.load_model("demo:minilm")
    recipe = search.CompressionConfig.uniform(bits=4, group_size=64)
    small = search.apply(loaded.model, recipe)
    print(search.evaluate(loaded, small))            # {"cosine": 0.99...}; policy=search.DataPolicy(...)
    print(search.memory_report(loaded.graph, recipe).total_bytes)
    search.export(loaded, recipe, "out/minilm-4bit", compressed=small)
    again = search.load_compressed("out/minilm-4bit")
    print(search.generate("demo:tinylm", "The ", max_new_tokens=32).text)  # or a .gguf file (llama.cpp)

Every name is resolved on first use (module ``__getattr__``), so ``import search``
stays light: it imports neither torch nor transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> "module:attribute"
_EXPORTS = {
    "load_model": "search.models:load_model",
    "LoadedModel": "search.models:LoadedModel",
    "CompressionConfig": "search.recipe:CompressionConfig",
    "LayerCompression": "search.recipe:LayerCompression",
    "parse_recipe": "search.recipe:parse_recipe",
    "apply": "search.compress:apply",
    "evaluate": "search.evaluation:evaluate",
    "calibration_batches": "search.data:calibration_batches",
    "export": "search.export_candidate:export",
    "generate": "search.text_generation:generate",
    "write_gguf": "search.runtimes.gguf_writer:write_gguf",
    "load_compressed": "search.compress.export:load_compressed",
    "memory_report": "search.memory:memory_report",
    "predict_latency": "search.hw_profiles.latency:predict_latency",
    "DataPolicy": "search.data_policy:DataPolicy",
    "evaluate_recipe": "search.evaluation:evaluate_recipe",
    "DeviceFitError": "search.errors:DeviceFitError",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
