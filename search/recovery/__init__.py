"""Recovery training for compressed models: distillation (distill.py), quantization-aware
training (qat.py), the seeds' thin wrappers (Distiller, Quantizer) and recover(), the
search's last stage. Nothing here imports torch at module import time.
"""

# imported eagerly so the names stay the functions/classes (a lazily imported submodule
# called "recover" would otherwise replace the package attribute of the same name)
from search.recovery.budget import RecoveryBudget, parse_budget
from search.recovery.distill import Distiller, TrainReport
from search.recovery.quantizer import Quantizer
from search.recovery.recover import recover

__all__ = ["Distiller", "Quantizer", "RecoveryBudget", "TrainReport", "parse_budget", "recover"]
