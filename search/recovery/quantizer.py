"""The seeds' ``Quantizer(model).quantize(...)``: post-training or quantization-aware, as a thin wrapper.

PTQ is search.compress.apply with a uniform recipe (group-wise round-to-nearest into
packed storage); QAT starts from that and trains the packed layers' fake-quant twins
against the original model (search.recovery.qat), then re-packs.
"""

from __future__ import annotations

from typing import Any, Literal

from search.errors import SpecError
from search.recipe import CompressionConfig


class Quantizer:
    """``Quantizer(model).quantize(bits=4, group_size=128, mode="ptq" | "qat", ...)``.

    model: a LoadedModel (its tokenizer supplies QAT's default training text) or a torch module.
    """

    def __init__(self, model: Any):
        self.loaded = model if hasattr(model, "graph") and hasattr(model, "model") else None
        self.model = self.loaded.model if self.loaded is not None else model

    def recipe(self, bits: int, group_size: int | None, symmetric: bool) -> CompressionConfig:
        return CompressionConfig.uniform(bits=bits, group_size=group_size, symmetric=symmetric)

    def quantize(self, bits: int = 4, group_size: int | None = 128, symmetric: bool = False,
                 mode: Literal["ptq", "qat"] = "ptq", *, batches: Any = None, steps: int | None = 100,
                 time_limit: float | None = None, lr: float | None = None, learn: str = "both",
                 progress: bool = False) -> Any:
        """A new quantized model (packed storage); the input model is untouched."""
        from search.compress import apply

        if mode not in ("ptq", "qat"):
            raise SpecError(f"quantization mode {mode!r} is unknown; use 'ptq' or 'qat'")
        quantized = apply(self.model, self.recipe(bits, group_size, symmetric))
        if mode == "ptq":
            return quantized
        if batches is None:
            if self.loaded is None:
                raise SpecError("QAT needs training text: pass batches= (token ids [n, seq]) or a LoadedModel")
            from search.recovery.recover import training_batches

            batches = training_batches(self.loaded, min(128, self.loaded.graph.max_positions))
        return self.train(quantized, batches, steps=steps, time_limit=time_limit, lr=lr, learn=learn,
                          progress=progress)

    def train(self, quantized: Any, batches: Any, *, steps: int | None, time_limit: float | None,
              lr: float | None, learn: str, progress: bool) -> Any:
        """QAT of an already-quantized model against self.model as the teacher; returns it re-packed."""
        from search.recovery.distill import Distiller, is_causal_lm
        from search.recovery.qat import make_trainable, pack_trained
        from search.recovery.recover import RecoverySettings

        settings = RecoverySettings.default_for(is_causal_lm(self.model))
        student = make_trainable(quantized, learn=learn)
        Distiller(self.model, student, hidden_weight=settings.hidden_weight,
                  temperature=settings.temperature).train(
            batches, steps=steps, time_limit=time_limit, lr=lr or settings.lr, batch_size=settings.batch_size,
            progress=progress)
        return pack_trained(student)
