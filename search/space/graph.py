"""The model graph as data: every compressible linear layer with its shape and role.

Built either from a config.json (no weights, no torch) or from a loaded
transformers model; both give the same ModelGraph, which is what the latency
model, the memory calculator and the search space work from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

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


class WidthFractions(Protocol):
    """What width pruning keeps (search.recipe.Width; the graph does not import the recipe, which imports it)."""

    heads: float
    mlp: float


class LayerInfo(BaseModel):
    """One compressible linear layer. Shapes are those of y = x W^T: in_features -> out_features."""

    model_config = ConfigDict(frozen=True)

    name: str
    block: int | None  # transformer block index; None for layers outside the blocks (lm_head)
    role: str  # q, k, v, qkv, o, gate, up, gate_up, down, fc1, fc2, lm_head
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
    # attention that sees only the last `sliding_window` keys, in these blocks (Gemma, Mistral, Phi-3)
    sliding_window: int | None = None
    sliding_blocks: tuple[int, ...] = ()
    attn_softcap: float | None = None  # tanh soft-capping of attention scores (Gemma 2)
    final_softcap: float | None = None  # tanh soft-capping of the output logits (Gemma 2)

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

    # ---- attention at a context ----------------------------------------------
    def attention_span(self, block: int, context: int) -> int:
        """Keys one query attends to (and the KV cache holds) in a block at this context."""
        if self.sliding_window is not None and block in self.sliding_blocks:
            return min(context, self.sliding_window)
        return context

    def causal_pairs(self, block: int, tokens: int) -> float:
        """(query, key) pairs of causal attention over `tokens` tokens: T^2/2, or W*T - W^2/2 beyond a window W."""
        span = self.attention_span(block, tokens)
        return 0.5 * tokens * tokens if span == tokens else span * tokens - 0.5 * span * span

    @property
    def extra_norm_width(self) -> int:
        """Elements per token that a block normalises beyond its two pre-norms (sandwich norms, q/k norms)."""
        fam = self.fam
        qk = (self.num_heads + self.num_kv_heads) * self.head_dim if fam.qk_norm else 0
        return len(fam.extra_block_norms) * self.hidden_size + qk

    # ---- width pruning: the shapes that remain -----------------------------
    def kept_kv_heads(self, heads_fraction: float) -> int:
        return max(1, int(round(heads_fraction * self.num_kv_heads)))

    def kept_heads(self, heads_fraction: float) -> int:
        """Query heads kept: whole key/value groups are pruned, so GQA structure stays intact."""
        return self.kept_kv_heads(heads_fraction) * (self.num_heads // self.num_kv_heads)

    def kept_neurons(self, mlp_fraction: float) -> int:
        return max(1, int(round(mlp_fraction * self.intermediate_size)))

    def sliced_shape(self, layer: LayerInfo, width: WidthFractions) -> tuple[int, int]:
        """(in_features, out_features) of a layer after width pruning."""
        in_f, out_f = layer.in_features, layer.out_features
        if layer.role in HEAD_OUTPUT_ROLES and width.heads < 1:
            heads, kv = self.kept_heads(width.heads), self.kept_kv_heads(width.heads)
            out_f = self.head_dim * {"q": heads, "k": kv, "v": kv, "qkv": heads + 2 * kv}[layer.role]
        if layer.role in HEAD_INPUT_ROLES and width.heads < 1:
            in_f = self.kept_heads(width.heads) * self.head_dim
        if layer.role in MLP_OUTPUT_ROLES and width.mlp < 1:
            out_f = self.kept_neurons(width.mlp) * (2 if layer.role == "gate_up" else 1)
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


# transformers' defaults for fields a config.json may leave out, where they are not derived from others
_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"max_position_embeddings": 2048},
    "gemma2": {"head_dim": 256, "num_key_value_heads": 4, "sliding_window": 4096, "max_position_embeddings": 8192,
               "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0},
    "gemma3": {"head_dim": 256, "num_key_value_heads": 4, "sliding_window": 4096, "max_position_embeddings": 131072},
    "qwen3": {"head_dim": 128, "sliding_window": 4096, "max_position_embeddings": 32768},
    "qwen2": {"sliding_window": 4096, "max_position_embeddings": 32768},
    "mistral": {"num_key_value_heads": 8, "sliding_window": 4096, "max_position_embeddings": 131072},
    "phi3": {"max_position_embeddings": 4096},
}


def _field(cfg: dict[str, Any], fam: Family, name: str) -> Any:
    """A config field as transformers reads it: an explicit value (null included), else the family default."""
    return cfg[name] if name in cfg else _DEFAULTS.get(fam.name, {}).get(name)


def _sliding(cfg: dict[str, Any], fam: Family, n: int) -> tuple[int | None, tuple[int, ...]]:
    """The sliding window and the blocks that use it, by each family's rule in transformers."""
    if fam.name == "llama":
        return None, ()
    window = _field(cfg, fam, "sliding_window")
    if fam.name in ("qwen2", "qwen3") and not cfg.get("use_sliding_window", False):
        window = None
    if window is None:
        return None, ()
    types = cfg.get("layer_types")
    if fam.name in ("mistral", "phi3"):  # one window for every block
        blocks = range(n)
    elif types:
        blocks = [i for i, t in enumerate(types) if t == "sliding_attention"]
    elif fam.name in ("qwen2", "qwen3"):
        blocks = range(_get(cfg, "max_window_layers", default=28), n)
    else:  # Gemma: every block but each pattern-th is local (Gemma 2: every other one)
        pattern = 2 if fam.name == "gemma2" else _get(cfg, "sliding_window_pattern", default=6)
        blocks = [i for i in range(n) if (i + 1) % pattern]
    return int(window), tuple(blocks)


def _llama_like(cfg: dict[str, Any], fam: Family) -> ModelGraph:
    """Llama and its relatives: Qwen2/3, Mistral, Gemma 2/3 (separate projections) and Phi-3 (fused ones)."""
    h, n = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv = _get(cfg, "num_key_value_heads", default=_field(cfg, fam, "num_key_value_heads") or heads)
    hd = _get(cfg, "head_dim", default=_field(cfg, fam, "head_dim") or h // heads)
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    attention_bias = bool(cfg.get("attention_bias", False)) and fam.name not in ("mistral", "phi3")
    qkv_bias = fam.name == "qwen2" or attention_bias
    o_bias = attention_bias and fam.name != "qwen2"
    mlp_bias = bool(cfg.get("mlp_bias", False)) and fam.name == "llama"
    tied = bool(cfg.get("tie_word_embeddings", fam.tied_by_default))
    if fam.name == "phi3":
        shapes = {"qkv": (h, (heads + 2 * kv) * hd, False), "o": (heads * hd, h, False),
                  "gate_up": (h, 2 * inter, False), "down": (inter, h, False)}
    else:
        shapes = {"q": (h, heads * hd, qkv_bias), "k": (h, kv * hd, qkv_bias), "v": (h, kv * hd, qkv_bias),
                  "o": (heads * hd, h, o_bias), "gate": (h, inter, mlp_bias), "up": (h, inter, mlp_bias),
                  "down": (inter, h, mlp_bias)}
    layers = _block_layers(fam, n, shapes)
    layers.append(LayerInfo(name="lm_head", block=None, role="lm_head", in_features=h, out_features=vocab,
                            bias=False, tied=tied))
    others = [OtherParam(name="model.embed_tokens.weight", numel=vocab * h)]
    for i in range(n):
        for norm in ("input_layernorm", "post_attention_layernorm", *fam.extra_block_norms):
            others.append(OtherParam(name=f"model.layers.{i}.{norm}.weight", numel=h, block=i))
        if fam.qk_norm:
            others += [OtherParam(name=f"model.layers.{i}.self_attn.{norm}.weight", numel=hd, block=i)
                       for norm in ("q_norm", "k_norm")]
    others.append(OtherParam(name="model.norm.weight", numel=h))
    window, sliding_blocks = _sliding(cfg, fam, n)
    softcaps = ({"attn_softcap": _field(cfg, fam, "attn_logit_softcapping"),
                 "final_softcap": _field(cfg, fam, "final_logit_softcapping")}
                if fam.name.startswith("gemma") else {})
    return ModelGraph(family=fam.name, model_type=cfg["model_type"], is_causal=True, num_blocks=n, hidden_size=h,
                      num_heads=heads, num_kv_heads=kv, head_dim=hd, intermediate_size=inter, vocab_size=vocab,
                      max_positions=_get(cfg, "max_position_embeddings",
                                         default=_field(cfg, fam, "max_position_embeddings")),
                      layers=tuple(layers), others=tuple(others), sliding_window=window,
                      sliding_blocks=sliding_blocks, **softcaps)


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


_BUILDERS = {**dict.fromkeys(("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3"), _llama_like),
             "gpt2": _gpt2, "bert": _bert}


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
