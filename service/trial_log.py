"""The service's own read model of a study's trials, through Optuna's public storage API only.

A finished trial (complete, failed, pruned) never changes, so it is read once: the first read of a
study takes all its trials in one query; later reads take only the trials that were still open and
those created since (their numbers follow the last count), two small queries each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FULL_READ_ABOVE = 64  # more trials than this to fetch one by one: one query for all of them instead


@dataclass
class TrialLog:
    finished: dict[int, Any] = field(default_factory=dict)  # number -> FrozenTrial, never read again
    open: dict[int, Any] = field(default_factory=dict)  # number -> its latest read
    count: int = 0  # trials the study had at the last read

    def update(self, storage: Any, study_id: int) -> list[Any]:
        """Read what may have changed since the last update; all trials, in number order."""
        count = storage.get_n_trials(study_id)
        wanted = sorted(set(self.open) | set(range(self.count, count)))
        if not self.count or len(wanted) > FULL_READ_ABOVE:
            fresh = storage.get_all_trials(study_id, deepcopy=False)
        else:
            fresh = [storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))
                     for number in wanted]
        for trial in fresh:
            if trial.number in self.finished:
                continue
            if trial.state.is_finished():
                self.finished[trial.number] = trial
                self.open.pop(trial.number, None)
            else:
                self.open[trial.number] = trial
        self.count = max(count, self.count)
        merged = {**self.finished, **self.open}
        return [merged[n] for n in sorted(merged)]
