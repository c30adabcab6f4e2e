"""A deterministic stand-in for evaluate(): quality as a fixed function of the recipe.

Engine mechanics (resume, storage, staging, the front's invariants) do not
depend on what quality is, only that it is a function of the recipe; this one
runs in microseconds, so those tests stay fast. End-to-end tests use the real
evaluate() instead.
"""

import zlib

from search.executor import EvalResult, EvalTask

BITS_LOSS = {16: 0.0, 8: 0.002, 6: 0.006, 5: 0.012, 4: 0.03, 3: 0.1, 2: 0.3}


def analytic_loss(task: EvalTask) -> float:
    from search.models import load_graph

    graph = load_graph(task.spec.model)
    recipe = task.recipe
    settings = recipe.resolve(graph)
    loss = sum(BITS_LOSS[s.bits] + 0.2 * s.sparsity + (0.0 if s.rank is None else 0.3 * (1 - s.rank))
               for s in settings.values()) / len(settings)
    kept = len(recipe.keep_blocks) if recipe.keep_blocks is not None else graph.num_blocks
    loss += 0.2 * (1 - recipe.width.mlp) + 0.2 * (1 - recipe.width.heads) + 0.5 * (1 - kept / graph.num_blocks)
    if task.stage == "proxy":  # the proxy sees a little deterministic noise, as a short slice would
        # keyed by what the recipe does (not its JSON, which grows fields), and smaller than compressing
        # the smallest group (one layer of 29 to 4 bits: 0.001), so a proxy never inverts a real effect
        key = repr(sorted((k, s.bits, s.group_size, s.sparsity, s.rank) for k, s in settings.items()))
        key += repr((recipe.width.mlp, recipe.width.heads, recipe.keep_blocks))
        loss += (zlib.crc32(key.encode()) % 100) / 100 * 0.0008 - 0.0004
    return loss


def analytic_evaluate(task: EvalTask) -> EvalResult:
    loss = analytic_loss(task)
    return EvalResult(key=task.key, quality={"kl": loss, "perplexity": 100 * (1 + loss)}, memory_bytes=0)


class Boom(RuntimeError):
    pass


def exploding_after(n: int):
    """An evaluate() that works n times, then raises (an interrupted search)."""
    calls = {"n": 0}

    def evaluate(task: EvalTask) -> EvalResult:
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt  # not an evaluation failure: the whole search stops
        return analytic_evaluate(task)

    return evaluate
