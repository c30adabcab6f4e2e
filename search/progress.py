"""Progress: how far a search is — the ONE shape the engine reports after every finished trial, the CLI's
progress bar reads, the service returns and the web page shows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Progress(BaseModel):
    model_config = ConfigDict(frozen=True)

    completed: int = Field(description="trials evaluated (feasible or not)")
    total: int = Field(description="trials asked for")
    running: int = Field(0, description="trials being evaluated now")
    failed: int = Field(0, description="trials whose evaluation failed")
    infeasible: int = Field(0, description="completed trials that break the budget")
    feasible: int = Field(0, description="fully evaluated trials within the budget")
    full_evaluations: int = Field(0, description="trials whose quality was measured on all the evaluation data")
    front_size: int = Field(0, description="candidates on the Pareto front so far")
    elapsed_s: float | None = Field(None, description="seconds since the search started (this run)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fraction(self) -> float:
        """completed / total, in [0, 1]."""
        return min(1.0, self.completed / self.total) if self.total else 0.0
