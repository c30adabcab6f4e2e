"""What a compressed layer depends on: the keys of search/compress/variant_cache.py.

A cached layer may replace a freshly compressed one only if everything its tensors were
computed from is in its key, or the cache lies:
- the layer itself: its name in the ORIGINAL model (before depth renumbering), its whole
  LayerCompression (JSON) and the device;
- width pruning: a head-sliced layer (q/k/v/qkv rows, o columns) depends on the kept
  key/value groups, an MLP-sliced one on the kept neurons; with calibration rows the
  ranking looks at activations, so the rows (a digest) and the kept blocks they flowed
  through count too;
- data-aware settings (layer_statistics.needs_statistics: Wanda, GPTQ): the statistics are
  measured on the whole depth- and width-pruned model, with the data-aware factorised layers
  installed as their fp32 factors (layer_statistics._attach_input_norms), so the key holds
  the rows, keep_blocks, both widths and the (layer, rank) of those factorised layers.
The token embedding table depends on its setting alone (it is never sliced). Width pruning's
activation energies are measured on the depth-pruned full-width model: they depend on the kept
blocks, the calibration rows and which of heads / neurons are measured, not on the widths.
"""

from __future__ import annotations

import hashlib

import torch

from search.compress.layer_statistics import needs_statistics
from search.recipe import CompressionConfig, LayerCompression
from search.space.families import HEAD_INPUT_ROLES, HEAD_OUTPUT_ROLES, MLP_INPUT_ROLES, MLP_OUTPUT_ROLES
from search.space.graph import LayerInfo, ModelGraph


def calibration_digest(calibration: torch.Tensor | None) -> str | None:
    if calibration is None:
        return None
    ids = calibration.detach().to(device="cpu", dtype=torch.long).contiguous()
    return hashlib.blake2b(ids.numpy().tobytes() + repr(tuple(ids.shape)).encode(), digest_size=16).hexdigest()


def _kept_widths(graph: ModelGraph, recipe: CompressionConfig) -> tuple[int, int]:
    return graph.kept_kv_heads(recipe.width.heads), graph.kept_neurons(recipe.width.mlp)


def _slicing(graph: ModelGraph, recipe: CompressionConfig, layer: LayerInfo, digest: str | None) -> tuple:
    """What width pruning did to this layer's weight (empty: nothing)."""
    if layer.block is None:
        return ()
    kept_kv, neurons = _kept_widths(graph, recipe)
    parts: tuple = ()
    if kept_kv < graph.num_kv_heads and layer.role in HEAD_OUTPUT_ROLES + HEAD_INPUT_ROLES:
        parts += (("kv_heads", kept_kv),)
    if neurons < graph.intermediate_size and layer.role in MLP_OUTPUT_ROLES + MLP_INPUT_ROLES:
        parts += (("neurons", neurons),)
    if parts and digest is not None:  # ranked by activation energy over the kept blocks
        parts += (("ranked_on", digest, recipe.keep_blocks),)
    return parts


def factorised_observed(graph: ModelGraph, recipe: CompressionConfig,
                        settings: dict[str, tuple[LayerInfo, LayerCompression]]) -> tuple:
    """(source name, rank) of the data-aware factorised layers: the statistics pass runs them as factors."""
    found = []
    for layer, setting in settings.values():
        if needs_statistics(setting):
            rank = setting.rank_for(*graph.sliced_shape(layer, recipe.width))
            if rank is not None:
                found.append((layer.name, rank))
    return tuple(sorted(found))


def layer_keys(graph: ModelGraph, recipe: CompressionConfig, targets: dict[str, tuple[LayerInfo, LayerCompression]],
               calibration: torch.Tensor | None, device: torch.device) -> dict[str, tuple]:
    """{target name (after depth renaming): key} for every target layer."""
    digest = calibration_digest(calibration)
    statistics = ("statistics", digest, recipe.keep_blocks, _kept_widths(graph, recipe),
                  factorised_observed(graph, recipe, targets))
    keys = {}
    for name, (layer, setting) in targets.items():
        key = ("layer", layer.name, setting.model_dump_json(), str(device), _slicing(graph, recipe, layer, digest))
        keys[name] = key + (statistics,) if needs_statistics(setting) else key
    return keys


def embedding_key(setting: LayerCompression, device: torch.device) -> tuple:
    return ("embedding", setting.model_dump_json(), str(device))


def width_energy_key(graph: ModelGraph, recipe: CompressionConfig, calibration: torch.Tensor | None,
                     device: torch.device) -> tuple:
    kept_kv, neurons = _kept_widths(graph, recipe)
    return ("width energy", calibration_digest(calibration), recipe.keep_blocks, kept_kv < graph.num_kv_heads,
            neurons < graph.intermediate_size, str(device))
