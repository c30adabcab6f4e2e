"""Recovery training for compressed models: distillation (distill.py), quantization-aware
training (qat.py), the seeds' thin wrappers (Distiller, Quantizer) and recover(), the
search's last stage. Nothing here imports torch at module import time.
"""

from search.recovery.budget import RecoveryBudget, parse_budget
from search.recovery.distill import Distiller, TrainReport

__all__ = ["Distiller", "RecoveryBudget", "TrainReport", "parse_budget", "Quantizer", "recover"]


def __getattr__(name: str):
    # Quantizer and recover pull in the compression modules; load them on first use
    if name == "Quantizer":
        from search.recovery.quantizer import Quantizer

        return Quantizer
    if name == "recover":
        from search.recovery.recover import recover

        return recover
    raise AttributeError(name)
