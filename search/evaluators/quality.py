"""Quality of a compressed (student) model against the uncompressed (teacher) model.

- Causal LMs: ``kl`` = mean over every token position of KL(teacher || student)
  of the next-token distributions, in nats; ``perplexity`` = exp of the
  student's mean negative log-likelihood of the batch's next tokens (the rows
  are evaluation text, never the calibration text data-aware transforms saw);
  ``top1`` = the fraction of token positions where the student's most likely
  next token is the teacher's. Lower is better for ``kl`` and ``perplexity``,
  higher for ``top1`` (1 = same greedy predictions). The primary metric is
  ``kl``, because it compares with the teacher directly, sees the whole
  distribution (``top1`` only its argmax) and is defined even when the teacher
  itself predicts the text badly (a random-init model, a text unlike its
  training data).
- Encoders: ``cosine`` = mean over samples of the cosine similarity between the
  student's and the teacher's mean-pooled last hidden states (higher is better).

All metrics are computed in float32 whatever the student's dtype (bfloat16
students are the norm), under ``torch.inference_mode()``.

Memory: the teacher runs once. Encoders keep one pooled vector per sample.
Causal LMs keep the teacher's float32 log-probabilities ([n, seq, vocab]) when
they fit in ``cache_bytes`` (default 512 MiB: 16 x 128 tokens of a 32k vocab is
256 MiB); otherwise nothing is cached and the teacher is re-run micro-batch by
micro-batch inside every evaluation, trading twice the compute for memory that
stays bounded by one micro-batch of logits (``chunk_bytes``). Rounding the
cache to 16-bit instead would blur exactly the small KL differences between
good recipes that the search has to rank.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any

from search.errors import DeviceFitError, SpecError
from search.evaluators.pooling import mean_pool

if TYPE_CHECKING:
    import torch

    from search.hf_models import LoadedModel
    from search.space.graph import ModelGraph

DEFAULT_CACHE_BYTES = 512 * 2**20
DEFAULT_CHUNK_BYTES = 256 * 2**20


def primary_metric(graph: ModelGraph) -> tuple[str, str]:
    """The metric a search optimises for this model, and whether to maximise or minimise it."""
    return ("kl", "min") if graph.is_causal else ("cosine", "max")


def metric_names(graph: ModelGraph) -> tuple[str, ...]:
    return ("kl", "perplexity", "top1") if graph.is_causal else ("cosine",)


def _device_of(model: Any) -> Any:
    import torch

    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class QualityEvaluator:
    """Scores students against one teacher on fixed batches; the teacher's outputs are computed once."""

    def __init__(self, teacher: LoadedModel, batches: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 *, cache_bytes: int = DEFAULT_CACHE_BYTES, chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        import torch

        if batches.dim() != 2 or batches.dtype != torch.long or batches.numel() == 0:
            raise SpecError("quality batches must be a non-empty LongTensor [samples, seq_len] of token ids")
        seq_len, max_pos = batches.shape[1], teacher.graph.max_positions
        if seq_len > max_pos:
            raise SpecError(f"sequence length {seq_len} exceeds the model's maximum of {max_pos} positions; "
                            f"use --seq-len {max_pos} or less")
        if int(batches.max()) >= teacher.graph.vocab_size:
            raise SpecError(f"token id {int(batches.max())} is outside the model's vocabulary of "
                            f"{teacher.graph.vocab_size}; the batches come from another tokenizer")
        self.teacher = teacher
        self.graph = teacher.graph
        self.batches = batches.cpu()
        self.mask = (torch.ones_like(self.batches) if attention_mask is None else attention_mask.cpu().long())
        self.is_causal = teacher.graph.is_causal
        row_bytes = seq_len * teacher.graph.vocab_size * 4  # one row of float32 logits
        self.micro = max(1, min(len(batches), chunk_bytes // row_bytes)) if self.is_causal else len(batches)
        self.caches_teacher = (not self.is_causal) or len(batches) * row_bytes <= cache_bytes
        self._teacher_out: list[torch.Tensor] | None = None

    # ---- model calls -------------------------------------------------------
    def _chunks(self) -> list[tuple[int, int]]:
        n = len(self.batches)
        return [(i, min(n, i + self.micro)) for i in range(0, n, self.micro)]

    def _forward(self, model: Any, lo: int, hi: int) -> torch.Tensor:
        """Float32 log-probs [b, seq, vocab] (causal) or pooled embeddings [b, hidden] (encoder), on CPU."""
        import torch

        device = _device_of(model)
        ids = self.batches[lo:hi].to(device)
        mask = self.mask[lo:hi].to(device)
        if self.is_causal:
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            return torch.log_softmax(logits.float(), dim=-1).cpu()
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        return mean_pool(hidden, mask).cpu()

    def _teacher_chunk(self, index: int, lo: int, hi: int) -> torch.Tensor:
        if self._teacher_out is not None:
            return self._teacher_out[index]
        return self._forward(self.teacher.model, lo, hi)

    def prepare(self) -> None:
        """Run the teacher once and keep what fits (called by the first evaluate)."""
        import torch

        if self._teacher_out is not None or not self.caches_teacher:
            return
        with torch.inference_mode():
            self._teacher_out = [self._forward(self.teacher.model, lo, hi) for lo, hi in self._chunks()]

    # ---- metrics -----------------------------------------------------------
    def evaluate(self, student: Any, *, progress: bool = False) -> dict[str, float]:
        """Quality metrics of ``student`` (a torch module with the teacher's interface)."""
        import torch
        from tqdm.auto import tqdm

        check_student(student)
        self.prepare()
        chunks = self._chunks()
        bar = tqdm(chunks, desc="evaluating", unit="chunk", file=sys.stderr, disable=not progress or len(chunks) < 2,
                   leave=False)
        with torch.inference_mode():
            if self.is_causal:
                kl_sum = nll_sum = 0.0
                kl_count = nll_count = agree = 0
                for index, (lo, hi) in enumerate(bar):
                    t_logp = self._teacher_chunk(index, lo, hi)
                    s_logp = self._forward(student, lo, hi)
                    kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1)  # [b, seq]
                    weights = self.mask[lo:hi].float()
                    kl_sum += float((kl * weights).sum())
                    kl_count += int(weights.sum())
                    same = (s_logp.argmax(-1) == t_logp.argmax(-1)).float()  # greedy next token agrees
                    agree += int((same * weights).sum())
                    targets = self.batches[lo:hi, 1:]
                    nll = -s_logp[:, :-1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                    pair_mask = weights[:, 1:] * weights[:, :-1]
                    nll_sum += float((nll * pair_mask).sum())
                    nll_count += int(pair_mask.sum())
                mean_nll = nll_sum / max(1, nll_count)
                return {"kl": kl_sum / max(1, kl_count),
                        "perplexity": math.exp(mean_nll) if mean_nll < 700 else math.inf,
                        "top1": agree / max(1, kl_count)}
            cos = []
            for index, (lo, hi) in enumerate(bar):
                t_emb = self._teacher_chunk(index, lo, hi)
                s_emb = self._forward(student, lo, hi)
                cos.append(torch.nn.functional.cosine_similarity(s_emb, t_emb, dim=-1))
            return {"cosine": float(torch.cat(cos).mean())}


def check_student(student: Any) -> None:
    """A clear error for something that is not a torch model."""
    import torch

    if not isinstance(student, torch.nn.Module):
        raise DeviceFitError(f"a student must be a torch.nn.Module, got {type(student).__name__}")
