"""The service's own read model of a study's trials, through Optuna's public storage API only.

A finished trial (complete, failed, pruned) never changes, so it is read once: the first read of a
study takes all its trials in one query; later reads take the open trials (running, waiting: a few,
however long the study), probe for trial numbers created since the last count, and read one by one
only the trials that finished since. A read costs the same at trial 10 and at trial 1000 (counting
the trials with get_n_trials would load every trial of the study on an RDB storage).
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
    study_id: int | None = None  # the storage's id of the study, once known

    def update(self, storage: Any, study_id: int) -> list[Any]:
        """Read what may have changed since the last update; all trials, in number order."""
        fresh = self._changed(storage, study_id) if self.count else None
        if fresh is None:
            fresh = storage.get_all_trials(study_id, deepcopy=False)
        for trial in fresh:
            if trial.number in self.finished:
                continue
            if trial.state.is_finished():
                self.finished[trial.number] = trial
                self.open.pop(trial.number, None)
            else:
                self.open[trial.number] = trial
        self.count = max([self.count, *(t.number + 1 for t in fresh)])
        merged = {**self.finished, **self.open}
        return [merged[n] for n in sorted(merged)]

    def _changed(self, storage: Any, study_id: int) -> list[Any] | None:
        """The open trials and those that finished or appeared since the last read (None: read them all)."""
        from optuna.trial import TrialState

        open_now = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        seen = {t.number for t in open_now}
        count = max([self.count, *(n + 1 for n in seen)])
        ids: dict[int, int] = {}  # trial number -> storage id, of the numbers probed below
        while True:  # trial numbers are consecutive: probe past the highest known one
            if count - self.count > FULL_READ_ABOVE:
                return None
            try:
                ids[count] = storage.get_trial_id_from_study_id_trial_number(study_id, count)
            except KeyError:
                break
            count += 1
        ended = sorted((set(self.open) | set(range(self.count, count))) - seen)
        if len(ended) > FULL_READ_ABOVE:
            return None
        for number in ended:
            if number not in ids:  # an open trial of the last read (probed numbers have their id already)
                ids[number] = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        return open_now + [storage.get_trial(ids[number]) for number in ended]
