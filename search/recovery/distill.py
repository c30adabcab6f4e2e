"""Knowledge distillation: train a compressed student to imitate the original teacher.

Causal LMs: loss = T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + alpha * CE(z_s, next token)
(Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"; T^2 keeps the gradient
scale independent of T), optionally plus hidden-state matching (MSE of the last hidden
states, through a learned projection when the widths differ), as in Minitron's
pruning + distillation (Muralidharan et al. 2024, arXiv:2407.14679).
Encoders: 1 - cosine (or MSE) between mean-pooled sentence embeddings of student and
teacher, optionally plus token-level hidden-state matching.

The teacher is frozen; its outputs for the calibration rows are computed once and
cached when they fit in memory, so a step costs one student forward/backward.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from search.errors import SpecError

# teacher outputs for all rows are cached below this many bytes, recomputed per step above it
TEACHER_CACHE_BYTES = 512 * 2**20


@dataclass
class TrainReport:
    """What a distillation run did."""

    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def _module(m: Any) -> Any:
    """The torch module of a LoadedModel, or the module itself."""
    return m if hasattr(m, "forward") else m.model


def is_causal_lm(model: Any) -> bool:
    return hasattr(model, "lm_head")


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Sentence embedding as sentence-transformers' all-MiniLM computes it: mean over real tokens."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def kd_kl(student_logits: Any, teacher_logits: Any, temperature: float) -> Any:
    """T^2 * KL(softmax(z_t/T) || softmax(z_s/T)), averaged over token positions."""
    import torch.nn.functional as F

    t = temperature
    log_ps = F.log_softmax(student_logits.float() / t, dim=-1)
    log_pt = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)
    return kl.mean() * (t * t)


class Distiller:
    """``Distiller(teacher, student).train(batches, steps=200)``: recover a compressed student.

    teacher, student: torch modules (or LoadedModels) of the same family; the student is
    trained in place (its trainable parameters are those with requires_grad).
    """

    def __init__(self, teacher: Any, student: Any, *, temperature: float = 1.0, alpha: float = 0.0,
                 hidden_weight: float = 0.0, embedding_loss: Literal["cosine", "mse"] = "cosine",
                 kind: Literal["causal", "encoder"] | None = None, seed: int = 0):
        import torch

        self.teacher = _module(teacher).eval()
        self.student = _module(student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if temperature <= 0:
            raise SpecError(f"distillation temperature {temperature} must be positive")
        self.temperature = temperature
        self.alpha = alpha
        self.hidden_weight = hidden_weight
        self.embedding_loss = embedding_loss
        self.kind = kind or ("causal" if is_causal_lm(self.student) else "encoder")
        self.seed = seed
        self.projection = None  # student hidden -> teacher hidden, when widths differ
        t_dim, s_dim = self._hidden_size(self.teacher), self._hidden_size(self.student)
        if hidden_weight > 0 and t_dim != s_dim:
            torch.manual_seed(seed)
            self.projection = torch.nn.Linear(s_dim, t_dim, bias=False)
        self._cache: dict[int, dict[str, Any]] = {}  # row index -> teacher outputs, for _cache_of's batches
        self._cache_of: tuple | None = None

    @staticmethod
    def _hidden_size(model: Any) -> int:
        return int(model.config.hidden_size)

    # ---- forward passes ----------------------------------------------------
    def _outputs(self, model: Any, ids: Any) -> dict[str, Any]:
        import torch

        mask = torch.ones_like(ids)
        want_hidden = self.hidden_weight > 0 or self.kind == "encoder"
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=want_hidden)
        result: dict[str, Any] = {}
        if self.kind == "causal":
            result["logits"] = out.logits
            if want_hidden:
                result["hidden"] = out.hidden_states[-1]
        else:
            hidden = out.last_hidden_state
            result["hidden"] = hidden
            result["pooled"] = mean_pool(hidden.float(), mask)
        return result

    def _teacher_outputs(self, batches: Any, rows: list[int]) -> dict[str, Any]:
        """Teacher outputs for these rows: from the cache, or computed (and cached when all rows fit)."""
        import torch

        missing = [r for r in rows if r not in self._cache]
        if not missing:
            return {k: torch.stack([self._cache[r][k] for r in rows]) for k in self._cache[rows[0]]}
        with torch.no_grad():
            out = {k: v.float() for k, v in self._outputs(self.teacher, batches[rows]).items()}
        per_row = sum(v[0].numel() * v.element_size() for v in out.values())
        if per_row * batches.shape[0] <= TEACHER_CACHE_BYTES:
            for i, r in enumerate(rows):
                self._cache[r] = {k: v[i] for k, v in out.items()}
        return out

    # ---- the loss ------------------------------------------------------------
    def loss(self, ids: Any, teacher_out: dict[str, Any] | None = None) -> tuple[Any, dict[str, float]]:
        """(differentiable loss, its parts) of the student on token ids [b, s]."""
        import torch
        import torch.nn.functional as F

        if teacher_out is None:
            with torch.no_grad():
                teacher_out = {k: v.float() for k, v in self._outputs(self.teacher, ids).items()}
        s_out = self._outputs(self.student, ids)
        parts: dict[str, Any] = {}
        if self.kind == "causal":
            parts["kl"] = kd_kl(s_out["logits"], teacher_out["logits"], self.temperature)
            if self.alpha > 0:
                logits = s_out["logits"][:, :-1].float()
                parts["ce"] = self.alpha * F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                           ids[:, 1:].reshape(-1))
        else:
            s, t = s_out["pooled"], teacher_out["pooled"]
            if self.embedding_loss == "cosine":
                parts["embedding"] = (1 - F.cosine_similarity(s, t, dim=-1)).mean()
            else:
                parts["embedding"] = F.mse_loss(s, t) / t.pow(2).mean().clamp_min(1e-12)
        if self.hidden_weight > 0:
            hs = s_out["hidden"].float()
            if self.projection is not None:
                hs = self.projection(hs)
            ht = teacher_out["hidden"]
            # normalised by the teacher's energy so the weight means the same for any model
            parts["hidden"] = self.hidden_weight * F.mse_loss(hs, ht) / ht.pow(2).mean().clamp_min(1e-12)
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def evaluate(self, batches: Any, batch_size: int = 8) -> float:
        """Mean distillation loss of the student on batches (no training): the KL for causal LMs."""
        import torch

        batches = _check_batches(batches)
        was_training = self.student.training
        self.student.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            for start in range(0, batches.shape[0], batch_size):
                ids = batches[start:start + batch_size]
                value, _ = self.loss(ids)
                total += float(value) * ids.shape[0]
                n += ids.shape[0]
        self.student.train(was_training)
        return total / max(1, n)

    # ---- training ----------------------------------------------------------------
    def train(self, batches: Any, steps: int | None = None, time_limit: float | None = None, lr: float = 1e-4,
              batch_size: int = 4, weight_decay: float = 0.0, progress: bool = False,
              extra_params: list | None = None) -> TrainReport:
        """Train the student for ``steps`` optimizer steps and/or ``time_limit`` seconds, whichever ends first.

        batches: LongTensor [n, seq] of token ids (search.data.calibration_batches). Rows are
        drawn in a seeded shuffled order, ``batch_size`` per step. With a step count the learning
        rate decays linearly to 0 after a short warm-up; with a time limit alone it stays constant.
        """
        import torch
        from tqdm import tqdm

        batches = _check_batches(batches)
        identity = (batches.data_ptr(), tuple(batches.shape))
        if identity != self._cache_of:  # cached teacher outputs belong to other rows
            self._cache, self._cache_of = {}, identity
        if steps is None and time_limit is None:
            raise SpecError("give a recovery budget: a number of steps or a time limit")
        if steps is not None and steps < 1:
            raise SpecError(f"recovery steps {steps} must be at least 1")
        if time_limit is not None and time_limit <= 0:
            raise SpecError(f"recovery time limit {time_limit}s must be positive")
        params = [p for p in self.student.parameters() if p.requires_grad]
        if self.projection is not None:
            params += list(self.projection.parameters())
        params += list(extra_params or [])
        if not params:
            raise SpecError("the student has no trainable parameters to recover")
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95))
        warmup = max(1, min(10, (steps or 100) // 10))

        def lr_at(step: int) -> float:
            if step < warmup:
                return lr * (step + 1) / warmup
            if steps is None:
                return lr
            return lr * max(0.0, (steps - step) / max(1, steps - warmup))

        gen = torch.Generator().manual_seed(self.seed)
        order: list[int] = []
        batch_size = min(batch_size, batches.shape[0])
        self.student.train()
        report = TrainReport(steps=0, seconds=0.0)
        start = time.perf_counter()
        bar = tqdm(total=steps, desc="recover", disable=not progress, file=sys.stderr, mininterval=1)
        try:
            while steps is None or report.steps < steps:
                if time_limit is not None and time.perf_counter() - start >= time_limit:
                    break
                if len(order) < batch_size:
                    order += torch.randperm(batches.shape[0], generator=gen).tolist()
                rows, order = order[:batch_size], order[batch_size:]
                teacher_out = self._teacher_outputs(batches, rows)
                for group in opt.param_groups:
                    group["lr"] = lr_at(report.steps)
                loss, _ = self.loss(batches[rows], teacher_out)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                report.steps += 1
                report.losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{report.losses[-1]:.4f}", refresh=False)
        finally:
            bar.close()
            self.student.eval()
            report.seconds = time.perf_counter() - start
        return report


def _check_batches(batches: Any) -> Any:
    import torch

    if not isinstance(batches, torch.Tensor) or batches.dim() != 2 or batches.dtype != torch.long:
        raise SpecError("recovery needs calibration token ids as a LongTensor [n, seq_len] "
                        "(search.data.calibration_batches)")
    if batches.shape[0] < 1 or batches.shape[1] < 2:
        raise SpecError(f"recovery needs at least one sequence of 2+ tokens, got shape {tuple(batches.shape)}")
    return batches
