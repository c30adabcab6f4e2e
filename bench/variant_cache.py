"""Full evaluations per minute with and without the layer-variant cache (search/compress/variant_cache.py).

demo:minilm, the default search (rpi5: llama.cpp's GGUF formats per role, quantized embeddings,
width and depth; the default data policy). Every evaluation goes through
search.evaluation.evaluate_task with stage "full" -- the path the search's workers run:
compress (apply) + score on the policy's evaluation rows.

Recipe lists (fixed by --seed):
- random: N recipes drawn uniformly from the RecipeSpace (every parameter independent);
- search-like: N recipes where each is one of the last 8 with 1-3 of its parameters redrawn
  (how NSGA-II offspring and TPE neighbours relate), so recipes share most layer settings.

Arms, interleaved per repeat in a rotating order (machine noise spreads over all of them):
- off/random, off/search-like: DEVICEFIT_VARIANT_CACHE_BYTES=0 (the build before the cache);
- on/random cold: a fresh cache over the random list (first pass: only shared settings hit);
- on/random warm: the same cache, the same list again (every layer hits);
- on/search-like: a fresh cache over the search-like list.
One untimed cache-off pass over both lists first warms what every worker keeps anyway (the
teacher's outputs, the GGUF block cache, the SVD cache). Each arm's qualities are checked to be
identical to the cache-off ones.

Run: .venv/bin/python bench/variant_cache.py [--recipes 30] [--repeats 3] [--threads 1]
     (writes docs/variant_cache.json)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from provenance import git_commit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def recipe_lists(space, n: int, seed: int) -> dict[str, list]:
    rng = random.Random(seed)
    draw = {name: (lambda options=options: rng.choice(options)) for name, options in space.choices.items()}
    uniform = [{name: pick() for name, pick in draw.items()} for _ in range(n)]
    chain = [{name: pick() for name, pick in draw.items()}]
    while len(chain) < n:
        child = dict(rng.choice(chain[-8:]))
        for name in rng.sample(sorted(draw), rng.randint(1, 3)):
            child[name] = draw[name]()
        chain.append(child)
    return {"random": [space.recipe(p) for p in uniform], "search-like": [space.recipe(p) for p in chain]}


class Timers:
    """Seconds spent in evaluation.compress and in VariantCache.get (the copy handed out), per pass."""

    def __init__(self):
        from search import evaluation
        from search.compress.variant_cache import VariantCache

        self.compress = self.copies = 0.0
        self.copy_calls = 0
        compress, get = evaluation.compress, VariantCache.get

        def timed_compress(*args, **kwargs):
            start = time.perf_counter()
            try:
                return compress(*args, **kwargs)
            finally:
                self.compress += time.perf_counter() - start

        def timed_get(cache, key):
            start = time.perf_counter()
            try:
                return get(cache, key)
            finally:
                self.copies += time.perf_counter() - start
                self.copy_calls += 1

        evaluation.compress, VariantCache.get = timed_compress, timed_get

    def reset(self) -> None:
        self.compress = self.copies = 0.0
        self.copy_calls = 0


def run_pass(spec, recipes, *, cache: str, timers: Timers) -> dict:
    """Evaluate every recipe (stage full); cache: 'off', 'fresh' (a new cache) or 'keep' (the current one)."""
    from search import evaluation
    from search.executor import EvalTask

    if cache == "off":
        os.environ[evaluation.VARIANT_CACHE_ENV] = "0"
    else:
        os.environ.pop(evaluation.VARIANT_CACHE_ENV, None)
        if cache == "fresh":
            evaluation._VARIANTS.clear()
    evaluation._last_compressed.clear()
    loaded = evaluation.loaded_model(spec.model)
    variants = evaluation.variant_cache(loaded)
    hits0, misses0 = (variants.hits, variants.misses) if variants else (0, 0)
    timers.reset()
    qualities, start = [], time.perf_counter()
    for i, recipe in enumerate(recipes):
        result = evaluation.evaluate_task(EvalTask(study="bench", trial=i, stage="full", spec=spec, recipe=recipe))
        qualities.append(result.quality)
    seconds = time.perf_counter() - start
    out = {"seconds": seconds, "evals_per_min": 60 * len(recipes) / seconds, "compress_s": timers.compress,
           "score_s": seconds - timers.compress, "qualities": qualities}
    if variants:
        out.update(hits=variants.hits - hits0, misses=variants.misses - misses0, cache_bytes=variants.bytes,
                   evictions=variants.evictions, copy_s=timers.copies, copies=timers.copy_calls)
    return out


ARMS = {  # name: (recipe list, cache mode); "on/random warm" follows "on/random cold" in the same cache
    "off/random": ("random", "off"),
    "on/random cold": ("random", "fresh"),
    "on/random warm": ("random", "keep"),
    "off/search-like": ("search-like", "off"),
    "on/search-like": ("search-like", "fresh"),
}
GROUPS = [["off/random"], ["on/random cold", "on/random warm"], ["off/search-like"], ["on/search-like"]]


def summarise(samples: list[dict]) -> dict:
    rates = [s["evals_per_min"] for s in samples]
    n = len(samples[0]["qualities"])
    summary = {"evals_per_min": {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
                                 "spread": max(rates) - min(rates), "runs": rates},
               "median_compress_s_per_eval": statistics.median(s["compress_s"] for s in samples) / n,
               "median_score_s_per_eval": statistics.median(s["score_s"] for s in samples) / n}
    if "hits" in samples[0]:
        summary.update(hits=samples[0]["hits"], misses=samples[0]["misses"],
                       cache_bytes=max(s["cache_bytes"] for s in samples),
                       evictions=max(s["evictions"] for s in samples),
                       median_copy_ms_per_eval=1000 * statistics.median(s["copy_s"] for s in samples) / n)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "variant_cache.json")
    args = parser.parse_args(argv)

    import torch

    from search.hw_profiles.runtimes import runtime_caps
    from search.models import load_graph
    from search.space.suggest import RecipeSpace
    from search.spec import SearchSpec
    from search.staging import CheapEvaluator

    torch.set_num_threads(args.threads)
    spec = SearchSpec()
    graph = load_graph(spec.model)
    space = RecipeSpace(graph, spec.space, runtime_caps(CheapEvaluator(spec, graph).profile))
    lists = recipe_lists(space, args.recipes, args.seed)
    timers = Timers()
    load_before = os.getloadavg()
    reference = {name: run_pass(spec, recipes, cache="off", timers=timers)["qualities"]
                 for name, recipes in lists.items()}  # the untimed warm-up, and the qualities to match
    samples: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    identical = True
    for repeat in range(args.repeats):
        for group in GROUPS[repeat % len(GROUPS):] + GROUPS[:repeat % len(GROUPS)]:
            for arm in group:
                which, cache = ARMS[arm]
                result = run_pass(spec, lists[which], cache=cache, timers=timers)
                identical &= result["qualities"] == reference[which]
                samples[arm].append(result)
                print(f"repeat {repeat} {arm:16s} {result['evals_per_min']:6.1f} evals/min "
                      f"(compress {result['compress_s']:.1f}s, score {result['score_s']:.1f}s"
                      + (f", {result['hits']} hits / {result['misses']} misses" if "hits" in result else "") + ")",
                      flush=True)
    summary = {arm: summarise(s) for arm, s in samples.items()}
    for arm, (which, cache) in ARMS.items():  # paired with the cache-off pass of the same repeat
        if cache != "off":
            pairs = zip(samples[arm], samples[f"off/{which}"], strict=True)
            ratios = [on["evals_per_min"] / off["evals_per_min"] for on, off in pairs]
            summary[arm]["speedup_vs_off_same_repeat"] = {"median": statistics.median(ratios), "min": min(ratios),
                                                         "max": max(ratios)}
    record = {
        "command": f".venv/bin/python bench/variant_cache.py --recipes {args.recipes} --repeats {args.repeats} "
                   f"--threads {args.threads} --seed {args.seed}",
        "model": spec.model, "device": spec.device, "data_policy": spec.data_policy.record(),
        "recipes_per_list": args.recipes, "repeats": args.repeats, "torch_threads": args.threads,
        "qualities_identical_to_cache_off": identical,
        "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"torch {torch.__version__}",
        "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "arms": summary,
        "recipes": {name: [r.model_dump(mode="json") for r in recipes] for name, recipes in lists.items()},
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for arm, s in summary.items():
        e = s["evals_per_min"]
        ratio = s.get("speedup_vs_off_same_repeat")
        print(f"{arm:16s} median {e['median']:6.1f} evals/min (min {e['min']:.1f}, max {e['max']:.1f}), compress "
              f"{s['median_compress_s_per_eval']:.3f} s/eval" + (f", x{ratio['median']:.2f} vs off" if ratio else ""))
    print(f"qualities identical to cache off: {identical}; wrote {args.out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
