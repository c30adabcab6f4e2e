"""A cheap quality predictor: the loss of a recipe as a sum of per-parameter effects, fitted to the
candidates the search has fully evaluated.

The additive model of HAQ and EvoPress: compressing layer group A and group B costs about what each
costs alone. Effects add in -log(cosine) (a cosine metric: independent errors multiply the
similarity) or in the loss itself (KL). Features are one-hot: each parameter's value other than its
first (uncompressed) option, plus, inside a layer group, each secondary setting (method, group size,
...) together with the group's bits or format, so that GPTQ's gain can differ between 3 and 8 bits
while an unseen pair falls back to the format's own effect.

The fit is ridge regression. A uniform observation (every group at Q4_0) does not say which group
lost what; the ridge splits it in proportion to the measured per-group sensitivity
(search/space/sensitivity.py) when there is one, else equally. Values never observed predict no loss:
the proposer will then try them, and the observation corrects the model.
"""

from __future__ import annotations

import math
from typing import Any

Params = dict[str, Any]
RIDGE = 1e-3  # small: the data decide wherever they can; the penalty only splits what they cannot
PRIMARY = ("format", "bits")  # a group's main quantization parameter (the first present)


class AdditiveLoss:
    def __init__(self, choices: dict[str, list[Any]], metric_direction: str,
                 sensitivity: dict[str, float] | None = None):
        self.choices, self.similarity = choices, metric_direction == "max"
        self.primary = {}  # group label -> its primary parameter name
        for name in choices:
            label, _, setting = name.rpartition(".")
            if setting in PRIMARY and label not in self.primary:
                self.primary[label] = name
        self.penalty: dict[str, float] = {}  # feature -> ridge weight (lower: takes more of a shared loss)
        share = _shares(sensitivity or {})
        for name, options in choices.items():
            label = name.rpartition(".")[0]
            for value in options[1:]:
                self.penalty[self._key(name, value)] = RIDGE / share.get(label, 1.0)
                primary = self.primary.get(label)
                if primary is not None and primary != name:
                    for p_value in choices[primary]:
                        self.penalty[self._key(name, value, p_value)] = RIDGE / share.get(label, 1.0)
        self.index = {key: i for i, key in enumerate(self.penalty)}
        self.effects = [0.0] * len(self.index)

    @staticmethod
    def _key(name: str, value: Any, primary_value: Any = None) -> str:
        return f"{name}={value!r}" + ("" if primary_value is None else f"|{primary_value!r}")

    def features(self, params: Params) -> list[int]:
        keys = []
        for name, options in self.choices.items():
            value = params.get(name, options[0])
            if value == options[0]:
                continue
            keys.append(self._key(name, value))
            primary = self.primary.get(name.rpartition(".")[0])
            if primary is not None and primary != name:
                keys.append(self._key(name, value, params.get(primary, self.choices[primary][0])))
        # a value outside today's choices (a trial resumed from an older space) has no feature
        return [self.index[k] for k in keys if k in self.index]

    def target(self, loss: float) -> float:
        return -math.log(max(1e-9, 1.0 - loss)) if self.similarity else loss

    def fit(self, observations: list[tuple[Params, float]]) -> None:
        """observations: (params, loss >= 0) of fully evaluated candidates."""
        import numpy as np

        if not observations:
            return
        x = np.zeros((len(observations), len(self.index)))
        for row, (params, _) in enumerate(observations):
            x[row, self.features(params)] = 1.0
        y = np.array([self.target(loss) for _, loss in observations])
        penalty = np.array(list(self.penalty.values()))
        # ridge in the dual form (n x n: n observations, far fewer than features)
        gram = (x / penalty) @ x.T + np.eye(len(observations))
        self.effects = list((x / penalty).T @ np.linalg.solve(gram, y))

    def predict(self, params: Params) -> float:
        t = max(0.0, sum(self.effects[i] for i in self.features(params)))
        return 1.0 - math.exp(-t) if self.similarity else t


def _shares(sensitivity: dict[str, float]) -> dict[str, float]:
    """Per-group sensitivity scaled to mean 1 (floored, so a group measured as lossless still gets some)."""
    values = {k: max(v, 0.0) for k, v in sensitivity.items()}
    mean = sum(values.values()) / len(values) if values else 0.0
    if mean <= 0:
        return {}
    return {k: max(v / mean, 0.05) for k, v in values.items()}
