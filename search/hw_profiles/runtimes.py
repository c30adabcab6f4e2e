"""What a device's runtime can run: weight formats per tensor, sparsity patterns, factorised layers.

A profile names its runtime in its ``runtime`` line ("llama.cpp (CPU, 4 threads)", "MLC LLM (CUDA ...)",
"PyTorch ..."); ``runtime_caps`` reads that runtime's entry of ``data/runtimes.yaml``. The search proposes
for a device only recipes its runtime runs (search/space/suggest.py), so no front member is scored as
something that cannot be deployed; ``unrunnable`` says why a given recipe cannot run there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from search.hw_profiles.profile import DATA_DIR, DeviceProfile

if TYPE_CHECKING:
    from search.recipe import CompressionConfig
    from search.space.graph import ModelGraph

ExportFormat = Literal["gguf", "hf", "devicefit"]


class RuntimeCaps(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    export_format: ExportFormat = Field(description="the format its models ship in")
    weight_formats: tuple[str, ...] | None = Field(
        None, description="GGUF tensor types it runs; null: devicefit's group-wise formats (bits)")
    bits: tuple[int, ...] | None = Field(None, description="integer weight bits it runs (non-GGUF runtimes)")
    group_sizes: tuple[int, ...] | None = Field(None, description="quantization group sizes; null: any")
    symmetric: bool | None = Field(None, description="true: symmetric quantization only; null: either")
    quantized_embeddings: bool = False
    sparsity_patterns: tuple[str, ...] = ()
    factorised_layers: bool = False
    last_block_outputs_only: bool = Field(
        False, description="in a prompt, the last block runs past its attention only on the rows whose logits "
                           "are returned (one, for a prompt that returns the last logits)")
    sources: tuple[str, ...] = ()

    @property
    def gguf(self) -> bool:
        return self.weight_formats is not None


RUNTIME_PREFIXES = (("llama.cpp", "llama.cpp"), ("mlc", "mlc"), ("pytorch", "pytorch"))


@lru_cache(maxsize=1)
def _table() -> dict[str, RuntimeCaps]:
    data = yaml.safe_load((DATA_DIR / "runtimes.yaml").read_text())
    return {name: RuntimeCaps(name=name, **entry) for name, entry in data.items()}


def runtime_caps(profile: DeviceProfile) -> RuntimeCaps:
    """The capabilities of the runtime a profile models (PyTorch, devicefit's own, when none is named)."""
    line = profile.runtime.lower()
    for prefix, name in RUNTIME_PREFIXES:
        if line.startswith(prefix):
            return _table()[name]
    return _table()["pytorch"]


def unrunnable(graph: ModelGraph, recipe: CompressionConfig, caps: RuntimeCaps) -> list[str]:
    """Why ``recipe`` cannot run as scored on this runtime (empty: it can)."""
    problems: list[str] = []
    for name, setting in recipe.resolve(graph).items():
        if setting.sparsity > 0 and setting.sparsity_pattern.value not in caps.sparsity_patterns:
            problems.append(f"{name}: {caps.name} has no {setting.sparsity_pattern.value} sparsity")
        if setting.rank is not None and not caps.factorised_layers:
            problems.append(f"{name}: {caps.name} has no factorised (low-rank) layers")
        if caps.gguf:
            if setting.quantized and setting.format is None:
                problems.append(f"{name}: {caps.name} runs GGUF types ({', '.join(caps.weight_formats)}), "
                                f"not {setting.bits}-bit group-wise weights")
            elif setting.format is not None and setting.format not in caps.weight_formats:
                problems.append(f"{name}: {caps.name} does not run {setting.format}")
        else:
            if setting.format is not None:
                problems.append(f"{name}: {caps.name} does not run GGUF type {setting.format}")
            if caps.bits is not None and setting.bits not in caps.bits:
                problems.append(f"{name}: {caps.name} runs {caps.bits}-bit weights, not {setting.bits}")
            if setting.quantized and caps.group_sizes is not None and setting.group_size not in caps.group_sizes:
                problems.append(f"{name}: {caps.name} runs group sizes {list(caps.group_sizes)}, "
                                f"not {setting.group_size}")
            if setting.quantized and caps.symmetric and not setting.symmetric:
                problems.append(f"{name}: {caps.name} runs symmetric quantization only")
    if not recipe.embedding.is_identity and not caps.quantized_embeddings:
        problems.append(f"embeddings: {caps.name} keeps token embeddings at 16 bits")
    return problems
