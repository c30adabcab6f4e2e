"""Score a GGUF file, run by llama.cpp, against the model it was made from.

The rows, the teacher outputs and the metric code are devicefit's own
(search.evaluators): llama.cpp is wrapped as a torch module that answers the
evaluator's forward call, so a GGUF gets exactly the metric keys and evaluation
rows of any other candidate (kl/perplexity for causal LMs, cosine for encoders).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import DeviceFitError
from search.runtimes.gguf_writer import POLICY_KEY, RECIPE_KEY, SOURCE_KEY


@dataclass
class GgufInfo:
    """What a GGUF says about itself, read without loading it into llama.cpp."""

    path: Path
    architecture: str
    source: str | None
    recipe: dict | None
    policy: dict | None  # the data policy it was scored with (DataPolicy.record())
    tensor_bytes: int
    file_bytes: int
    tensor_types: dict[str, int] = field(default_factory=dict)  # type name -> tensor count


def read_gguf_info(path: str | os.PathLike) -> GgufInfo:
    import gguf

    p = Path(path).expanduser()
    if not p.is_file():
        raise DeviceFitError(f"GGUF file {str(path)!r} does not exist")
    try:
        reader = gguf.GGUFReader(str(p))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a GGUF"
        raise DeviceFitError(f"{str(path)!r} is not a readable GGUF file: {exc}") from None

    def text(key: str) -> str | None:
        f = reader.get_field(key)
        return None if f is None else bytes(f.parts[f.data[0]]).decode("utf-8")

    recipe, policy = text(RECIPE_KEY), text(POLICY_KEY)
    types: dict[str, int] = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return GgufInfo(path=p, architecture=text("general.architecture") or "?", source=text(SOURCE_KEY),
                    recipe=json.loads(recipe) if recipe else None, policy=json.loads(policy) if policy else None,
                    tensor_bytes=int(sum(int(t.n_bytes) for t in reader.tensors)),
                    file_bytes=p.stat().st_size, tensor_types=types)


def llamacpp_student(runtime: Any, is_causal: bool) -> Any:
    """A torch module whose forward runs each row through llama.cpp (what QualityEvaluator calls)."""
    import torch
    from torch import nn

    class LlamaCppStudent(nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> Any:
            from types import SimpleNamespace

            rows = []
            for i in range(input_ids.shape[0]):
                ids = input_ids[i]
                n = int(attention_mask[i].sum()) if attention_mask is not None else len(ids)
                out = runtime.logits(ids[:n].tolist()) if is_causal else runtime.hidden_states(ids[:n].tolist())
                row = torch.zeros(len(ids), out.shape[1], dtype=torch.float32)
                row[:n] = torch.from_numpy(out)  # right padding (if any) stays zero and is masked out
                rows.append(row)
            stacked = torch.stack(rows)
            return SimpleNamespace(logits=stacked) if is_causal else SimpleNamespace(last_hidden_state=stacked)

    return LlamaCppStudent()


def evaluate_gguf(path: str | os.PathLike, policy: Any = None, *, source: str | None = None,
                  threads: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Quality of the GGUF (run by llama.cpp) against its source model, on ``policy``'s evaluation rows
    (default: the data policy the file records, so the number is comparable with the search's).

    Returns {"quality", "memory_bytes" (tensor bytes), "file_bytes", "recipe", "data", "source", "runtime", ...}.
    """
    from search.data_policy import DataPolicy
    from search.evaluation import check_sizes, loaded_model, score
    from search.runtimes.llamacpp import LlamaCppModel

    info = read_gguf_info(path)
    source = source or info.source
    if not source:
        raise DeviceFitError(f"{str(path)!r} does not record the model it was made from (key {SOURCE_KEY}); "
                             "it cannot be scored against an original")
    policy = policy or (DataPolicy.from_record(info.policy) if info.policy else DataPolicy())
    teacher = loaded_model(source)
    check_sizes(teacher.graph, policy.eval_rows, policy.seq_len)
    with LlamaCppModel(info.path, n_ctx=max(policy.seq_len, 8), n_threads=threads,
                       embeddings=not teacher.graph.is_causal) as runtime:
        if runtime.n_vocab != teacher.graph.vocab_size:
            raise DeviceFitError(f"the GGUF has {runtime.n_vocab} tokens but its source {source!r} has "
                                 f"{teacher.graph.vocab_size}; is it really made from that model?")
        quality = score(teacher, llamacpp_student(runtime, teacher.graph.is_causal), policy, progress=progress)
        used = runtime.threads
    return {"quality": {k: (v if math.isfinite(v) else None) for k, v in quality.items()},
            "memory_bytes": info.tensor_bytes, "file_bytes": info.file_bytes, "recipe": info.recipe,
            "data": policy.record(), "source": source, "runtime": "llama.cpp", "threads": used,
            "tensor_types": info.tensor_types}
