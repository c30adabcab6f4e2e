"""The model graph as data: every compressible linear layer with its shape and role.

Built either from a config.json (no weights, no torch) or from a loaded
transformers model; both give the same ModelGraph, which is what the latency
model, the memory calculator and the search space work from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from search.errors import ModelError
from search.space.families import (
    FAMILIES,
    HEAD_INPUT_ROLES,
    HEAD_OUTPUT_ROLES,
    MLP_INPUT_ROLES,
    MLP_OUTPUT_ROLES,
    Family,
    family_for,
)

if TYPE_CHECKING:
    from search.recipe import Width


class LayerInfo(BaseModel):
    """One compressible linear layer. Shapes are those of y = x W^T: in_features -> out_features."""

    model_config = ConfigDict(frozen=True)

    name: str
    block: int | None  # transformer block index; None for layers outside the blocks (lm_head)
    role: str  # q, k, v, qkv, o, gate, up, down, fc1, fc2, lm_head
    in_features: int
    out_features: int
    bias: bool
    tied: bool = False  # shares its weight with the input embedding

    @property
    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)


class OtherParam(BaseModel):
    """A parameter that is not a compressible linear weight (embeddings, norms): kept at 16 bits."""

    model_config = ConfigDict(frozen=True)

    name: str
    numel: int
    block: int | None = None


class ModelGraph(BaseModel):
    model_config = ConfigDict(frozen=True)

    family: str
    model_type: str
    is_causal: bool
    num_blocks: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    layers: tuple[LayerInfo, ...]
    others: tuple[OtherParam, ...]

    @property
    def fam(self) -> Family:
        return FAMILIES[self.family]

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers if not layer.tied) + sum(p.numel for p in self.others)

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ModelError(f"the model has no layer {name!r}")

    def blocks_of(self, keep_blocks: tuple[int, ...] | None) -> list[int]:
        return list(range(self.num_blocks)) if keep_blocks is None else list(keep_blocks)

    # ---- width pruning: the shapes that remain -----------------------------
    def kept_kv_heads(self, heads_fraction: float) -> int:
        return max(1, int(round(heads_fraction * self.num_kv_heads)))

    def kept_heads(self, heads_fraction: float) -> int:
        """Query heads kept: whole key/value groups are pruned, so GQA structure stays intact."""
        return self.kept_kv_heads(heads_fraction) * (self.num_heads // self.num_kv_heads)

    def kept_neurons(self, mlp_fraction: float) -> int:
        return max(1, int(round(mlp_fraction * self.intermediate_size)))

    def sliced_shape(self, layer: LayerInfo, width: Width) -> tuple[int, int]:
        """(in_features, out_features) of a layer after width pruning."""
        in_f, out_f = layer.in_features, layer.out_features
        if layer.role in HEAD_OUTPUT_ROLES and width.heads < 1:
            per_head = self.kept_kv_heads(width.heads) if layer.role in ("k", "v") else self.kept_heads(width.heads)
            out_f = per_head * self.head_dim * (3 if layer.role == "qkv" else 1)
        if layer.role in HEAD_INPUT_ROLES and width.heads < 1:
            in_f = self.kept_heads(width.heads) * self.head_dim
        if layer.role in MLP_OUTPUT_ROLES and width.mlp < 1:
            out_f = self.kept_neurons(width.mlp)
        if layer.role in MLP_INPUT_ROLES and width.mlp < 1:
            in_f = self.kept_neurons(width.mlp)
        return in_f, out_f


# ---- from a config ---------------------------------------------------------

def _get(cfg: dict[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if cfg.get(n) is not None:
            return cfg[n]
    return default


def graph_from_config(config: dict[str, Any] | str | Path) -> ModelGraph:
    """ModelGraph from a config.json (path or dict) or a transformers config's to_dict(); no weights needed."""
    if isinstance(config, str | Path):
        path = Path(config)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ModelError(f"config file {str(path)!r} does not exist")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ModelError("a model config must be a JSON object")
    family = family_for(config.get("model_type"))
    try:
        return _BUILDERS[family.name](config, family)
    except (KeyError, TypeError) as exc:
        raise ModelError(f"config of model_type {config.get('model_type')!r} lacks field {exc}") from None


def _llama_like(cfg: dict[str, Any], fam: Family) -> ModelGraph:
    h, n = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv = _get(cfg, "num_key_value_heads", default=heads)
    hd = _get(cfg, "head_dim", default=h // heads)
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    qkv_bias = fam.name == "qwen2" or bool(cfg.get("attention_bias", False))
    o_bias = bool(cfg.get("attention_bias", False)) and fam.name != "qwen2"
    mlp_bias = bool(cfg.get("mlp_bias", False))
    tied = bool(cfg.get("tie_word_embeddings", False))
    shapes = {"q": (h, heads * hd, qkv_bias), "k": (h, kv * hd, qkv_bias), "v": (h, kv * hd, qkv_bias),
              "o": (heads * hd, h, o_bias), "gate": (h, inter, mlp_bias), "up": (h, inter, mlp_bias),
              "down": (inter, h, mlp_bias)}
    layers = _block_layers(fam, n, shapes)
    layers.append(LayerInfo(name="lm_head", block=None, role="lm_head", in_features=h, out_features=vocab,
                            bias=False, tied=tied))
    others = [OtherParam(name="model.embed_tokens.weight", numel=vocab * h)]
    for i in range(n):
        for norm in ("input_layernorm", "post_attention_layernorm"):
            others.append(OtherParam(name=f"model.layers.{i}.{norm}.weight", numel=h, block=i))
    others.append(OtherParam(name="model.norm.weight", numel=h))
    return ModelGraph(family=fam.name, model_type=cfg["model_type"], is_causal=True, num_blocks=n, hidden_size=h,
                      num_heads=heads, num_kv_heads=kv, head_dim=hd, intermediate_size=inter, vocab_size=vocab,
                      max_positions=_get(cfg, "max_position_embeddings", default=2048),
                      layers=tuple(layers), others=tuple(others))


def _gpt2(cfg: dict[str, Any], fam: Family) -> ModelGraph:
    h, n, heads = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
    inter = _get(cfg, "n_inner", default=4 * h)
    vocab, pos = cfg["vocab_size"], cfg["n_positions"]
    shapes = {"qkv": (h, 3 * h, True), "o": (h, h, True), "fc1": (h, inter, True), "fc2": (inter, h, True)}
    layers = _block_layers(fam, n, shapes)
    layers.append(LayerInfo(name="lm_head", block=None, role="lm_head", in_features=h, out_features=vocab,
                            bias=False, tied=True))
    others = [OtherParam(name="transformer.wte.weight", numel=vocab * h),
              OtherParam(name="transformer.wpe.weight", numel=pos * h)]
    for i in range(n):
        for ln in ("ln_1", "ln_2"):
            for p in ("weight", "bias"):
                others.append(OtherParam(name=f"transformer.h.{i}.{ln}.{p}", numel=h, block=i))
    others += [OtherParam(name=f"transformer.ln_f.{p}", numel=h) for p in ("weight", "bias")]
    return ModelGraph(family=fam.name, model_type="gpt2", is_causal=True, num_blocks=n, hidden_size=h,
                      num_heads=heads, num_kv_heads=heads, head_dim=h // heads, intermediate_size=inter,
                      vocab_size=vocab, max_positions=pos, layers=tuple(layers), others=tuple(others))


def _bert(cfg: dict[str, Any], fam: Family) -> ModelGraph:
    h, n, heads = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    pos, types = cfg.get("max_position_embeddings", 512), cfg.get("type_vocab_size", 2)
    shapes = {"q": (h, h, True), "k": (h, h, True), "v": (h, h, True), "o": (h, h, True),
              "fc1": (h, inter, True), "fc2": (inter, h, True)}
    layers = _block_layers(fam, n, shapes)
    others = [OtherParam(name="embeddings.word_embeddings.weight", numel=vocab * h),
              OtherParam(name="embeddings.position_embeddings.weight", numel=pos * h),
              OtherParam(name="embeddings.token_type_embeddings.weight", numel=types * h),
              OtherParam(name="embeddings.LayerNorm.weight", numel=h),
              OtherParam(name="embeddings.LayerNorm.bias", numel=h)]
    for i in range(n):
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            for p in ("weight", "bias"):
                others.append(OtherParam(name=f"encoder.layer.{i}.{ln}.{p}", numel=h, block=i))
    return ModelGraph(family=fam.name, model_type="bert", is_causal=False, num_blocks=n, hidden_size=h,
                      num_heads=heads, num_kv_heads=heads, head_dim=h // heads, intermediate_size=inter,
                      vocab_size=vocab, max_positions=pos, layers=tuple(layers), others=tuple(others))


def _block_layers(fam: Family, n: int, shapes: dict[str, tuple[int, int, bool]]) -> list[LayerInfo]:
    layers = []
    for i in range(n):
        prefix = fam.block_prefix.format(i=i)
        for role, suffix in fam.block_layers.items():
            in_f, out_f, bias = shapes[role]
            layers.append(LayerInfo(name=f"{prefix}.{suffix}", block=i, role=role, in_features=in_f,
                                    out_features=out_f, bias=bias))
    return layers


_BUILDERS = {"llama": _llama_like, "qwen2": _llama_like, "gpt2": _gpt2, "bert": _bert}


# ---- from a loaded model ---------------------------------------------------

def graph_from_model(model: Any) -> ModelGraph:
    """ModelGraph of a loaded (uncompressed) transformers model, checked against its real modules.

    The graph is derived from the model's config, then every listed layer is
    looked up in the model and its real shape compared, so a checkpoint whose
    modules differ from its config is caught here rather than mid-search.
    """
    graph = graph_from_config(model.config.to_dict())
    modules = dict(model.named_modules())
    for layer in graph.layers:
        module = modules.get(layer.name)
        if module is None:
            raise ModelError(f"model of type {graph.model_type!r} has no module {layer.name!r}; "
                             "is it a base encoder / causal-LM class devicefit loads?")
        weight = module.weight
        # transformers' GPT-2 blocks use Conv1D, whose weight is stored [in, out]
        out_f, in_f = weight.shape[::-1] if type(module).__name__ == "Conv1D" else weight.shape
        if (in_f, out_f) != (layer.in_features, layer.out_features):
            raise ModelError(f"layer {layer.name!r} is {in_f}->{out_f} but its config says "
                             f"{layer.in_features}->{layer.out_features}")
    return graph
