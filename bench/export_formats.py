"""Export formats side by side: size on disk per format, the quality each export gives when reloaded,
and how closely plain transformers reproduces devicefit's compressed model from the hf export.

For demo:minilm (real weights) and small random-init Llama / Qwen2 models, each candidate is built
once (search.compress.apply), written as devicefit, hf and (when the gguf package is installed and
the recipe is GGUF-typed) gguf, and the hf directory is loaded back with plain transformers:
- causal LMs: mean per-token KL(devicefit || transformers) of the next-token distributions on
  random token rows (devicefit's model in bfloat16, as the search scores it);
- MiniLM: the lowest cosine between mean-pooled sentence embeddings of the two models;
and each candidate's quality against the original model (search.evaluation.score, the default data
policy): as scored (devicefit's model in memory), and reloaded from the devicefit and hf exports.

    .venv/bin/python bench/export_formats.py   # writes docs/export_formats.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.compress import apply  # noqa: E402
from search.compress.export import load_compressed  # noqa: E402
from search.data_policy import DataPolicy  # noqa: E402
from search.errors import DeviceFitError  # noqa: E402
from search.evaluation import score  # noqa: E402
from search.exporters import export_model  # noqa: E402
from search.exporters.hf import load_hf_export  # noqa: E402
from search.models import ByteTokenizer, LoadedModel, build_from_config, load_model  # noqa: E402
from search.recipe import CompressionConfig as C  # noqa: E402
from search.recipe import parse_recipe  # noqa: E402
from search.space.graph import graph_from_model  # noqa: E402

SENTENCES = ["the quick brown fox jumps over the lazy dog", "compression fits a model to a small device",
             "a candidate is a recipe with its measured metrics", "llama.cpp runs GGUF files on phones"]


def gguf_typed(fmt: str) -> C:
    return parse_recipe({"layers": {"_default": {"format": fmt}}})


CANDIDATES = {
    "width mlp×0.5 heads×0.5": C.uniform(width=0.5, heads=0.5),
    "8b/g128": C.uniform(bits=8),
    "4b/g32": C.uniform(bits=4, group_size=32),
    "4b/g32 sym, 2:4 50%": C.uniform(bits=4, group_size=32, symmetric=True, sparsity=0.5, sparsity_pattern="2:4"),
    "low-rank r0.5 + 8b": C.uniform(bits=8, rank=0.5),
    "Q8_0": gguf_typed("Q8_0"),
    "Q4_0": gguf_typed("Q4_0"),
}
POLICY = DataPolicy()
ENCODER_SKIP = {"width mlp×0.5 heads×0.5": C.uniform(width=0.5)}  # BERT's config has no head_dim


def random_causal(model_type: str) -> LoadedModel:
    config = {"llama": dict(model_type="llama", hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                            num_attention_heads=8, num_key_value_heads=4, vocab_size=2048, tie_word_embeddings=False),
              "qwen2": dict(model_type="qwen2", hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                            num_attention_heads=8, num_key_value_heads=4, vocab_size=2048,
                            tie_word_embeddings=True)}[model_type]
    torch.manual_seed(0)
    model = build_from_config(config)
    return LoadedModel(ref=f"random-{model_type}", model=model, tokenizer=ByteTokenizer(2048),
                       graph=graph_from_model(model))


def disk_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@torch.no_grad()
def compare(loaded: LoadedModel, compressed, hf_dir: Path) -> dict:
    if loaded.graph.is_causal:
        plain = transformers.AutoModelForCausalLM.from_pretrained(hf_dir)
        ids = torch.randint(0, loaded.graph.vocab_size, (4, 64), generator=torch.Generator().manual_seed(0))
        p = compressed(input_ids=ids).logits.float().log_softmax(-1)
        q = plain(input_ids=ids).logits.float().log_softmax(-1)
        return {"kl_devicefit_vs_transformers": float((p.exp() * (p - q)).sum(-1).mean())}
    plain = transformers.AutoModel.from_pretrained(hf_dir)
    batch = loaded.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    mask = batch["attention_mask"].unsqueeze(-1).float()

    def pooled(model):
        return (model(**batch).last_hidden_state.float() * mask).sum(1) / mask.sum(1)

    cosine = torch.nn.functional.cosine_similarity(pooled(compressed), pooled(plain))
    return {"min_cosine_devicefit_vs_transformers": float(cosine.min())}


def run_model(loaded: LoadedModel, work: Path) -> list[dict]:
    rows = []
    for label, recipe in CANDIDATES.items():
        if not loaded.graph.is_causal:
            recipe = ENCODER_SKIP.get(label, recipe)
        compressed = apply(loaded.model, recipe)
        row = {"model": loaded.ref, "candidate": label, "recipe": recipe.summary(), "disk_bytes": {},
               "quality": {"scored": score(loaded, compressed, POLICY)}}
        for fmt in ("devicefit", "hf", "gguf"):
            out = work / f"{loaded.ref.replace(':', '-')}-{len(rows)}-{fmt}"
            start = time.perf_counter()
            try:
                path = export_model(loaded, compressed, recipe, out, fmt)
            except DeviceFitError as exc:
                row["disk_bytes"][fmt] = None
                row[f"{fmt}_refused"] = str(exc)
                continue
            row[f"{fmt}_seconds"] = round(time.perf_counter() - start, 2)
            row["disk_bytes"][fmt] = disk_bytes(path)
            if fmt == "hf":
                row.update(compare(loaded, compressed, path))
                row["quality"]["hf"] = score(loaded, load_hf_export(path, loaded.graph.is_causal), POLICY)
            elif fmt == "devicefit":
                row["quality"]["devicefit"] = score(loaded, load_compressed(path).model, POLICY)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    transformers.utils.logging.set_verbosity_error()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for loaded in (load_model("demo:minilm"), random_causal("llama"), random_causal("qwen2")):
            rows += run_model(loaded, Path(tmp))
    meta = {"torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import compressed_tensors

        meta["compressed_tensors"] = compressed_tensors.__version__
    except ModuleNotFoundError:
        pass
    (ROOT / "docs" / "export_formats.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
