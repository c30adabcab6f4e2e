"""Fit a profile's efficiency factors to measured latencies (least squares on log latency).

Measurements are CSV rows like ``data/calibration.csv``:
``device,runtime,model,quant,bpw,threads,metric,value[,conf,source]`` where
``model`` is a name from ``data/architectures.json`` or a model reference / config.json,
``metric`` is ``tg`` (decode tokens/s at context 128), ``pp`` (prompt tokens/s for 512
tokens), ``tg@N`` / ``pp@N`` for other lengths, or a workload (``encode:128``,
``decode:512``) whose ``value`` is milliseconds.

The fit minimises sum (log predicted - log measured)^2 plus a small pull of each
log factor towards its current value. By default only the factors the rows can
identify are fitted (``identifiable_factors``): batch-1 decode streams every weight
once per token, so decode rows identify the memory factor; prompt / encode rows
multiply matrices of many rows and identify compute. Overheads and dequantisation
are never identified by tokens/s rows of one or two models, so they keep their
data-sheet values instead of absorbing the residual of one point.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from search.errors import DeviceError, RecipeError, SpecError
from search.hw_profiles.latency import predict_latency
from search.hw_profiles.profile import DATA_DIR, DeviceProfile, Efficiency
from search.recipe import ALLOWED_BITS, CompressionConfig
from search.space.graph import ModelGraph, graph_from_config
from search.workload import Workload

FACTORS = ("compute", "memory", "overhead", "dequant")
# (lower, upper) bounds of each factor: efficiencies never exceed 1 (never faster than the roofline)
BOUNDS = {"compute": (0.01, 1.0), "memory": (0.01, 1.0), "overhead": (0.02, 50.0), "dequant": (0.05, 20.0)}
PRIOR_WEIGHT = 1e-3


@dataclass(frozen=True)
class Case:
    """One measurement as the latency model sees it."""

    label: str
    graph: ModelGraph
    recipe: CompressionConfig
    workload: Workload
    measured_ms: float
    threads: int | None = None  # CPU threads of the measurement (None: the profile's own)

    def predict_ms(self, profile: DeviceProfile) -> float:
        return predict_latency(self.graph, self.recipe, self.workload, profile.with_threads(self.threads)).total_ms


def read_measurements(path: str | Path, device: str | None = None) -> list[Case]:
    """Cases of a measurements CSV; rows of other devices are skipped when `device` is given."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"measurements file {str(path)!r} does not exist")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    need = {"model", "metric", "value"}
    if not rows or not need <= set(rows[0]):
        raise SpecError(f"{str(path)!r} needs a header with columns {', '.join(sorted(need))} "
                        "(and device, quant, bpw), like data/calibration.csv")
    devices = {r.get("device", "") for r in rows}
    if device is not None and device in devices:
        rows = [r for r in rows if r.get("device") == device]
    elif device is not None and devices - {""}:
        raise DeviceError(f"{str(path)!r} has no rows for device {device!r}; it has {', '.join(sorted(devices))}")
    return [row_case(r, f"{path.name}:{i + 1}") for i, r in enumerate(rows)]


def row_case(row: dict[str, str], label: str) -> Case:
    graph = runtime_graph(row["model"].strip())
    recipe = recipe_for_format(graph, row.get("quant", ""), row.get("bpw", ""))
    workload, measured_ms = _metric(row["metric"].strip(), row["value"], label)
    return Case(label=f"{label} {row.get('device', '')} {row['model']} {row.get('quant', '')} {row['metric']}",
                graph=graph, recipe=recipe, workload=workload, measured_ms=measured_ms,
                threads=_threads(row.get("threads"), label))


def _threads(text: str | None, label: str) -> int | None:
    """The row's thread count; empty or 0 (GPU runs, unknown) means the profile's own."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        raise SpecError(f"{label}: threads {text!r} is not a whole number") from None
    return n if n > 0 else None


def _metric(metric: str, value: str, label: str) -> tuple[Workload, float]:
    try:
        v = float(value)
    except ValueError:
        raise SpecError(f"{label}: value {value!r} is not a number") from None
    if v <= 0:
        raise SpecError(f"{label}: value {value!r} must be positive")
    m = re.fullmatch(r"(tg|pp)(?:@(\d+))?", metric)
    if m:
        n = int(m.group(2) or (128 if m.group(1) == "tg" else 512))
        if m.group(1) == "tg":
            return Workload(kind="decode", tokens=n), 1000.0 / v
        return Workload(kind="prefill", tokens=n), n * 1000.0 / v
    try:
        return Workload.parse(metric), v
    except SpecError:
        raise SpecError(f"{label}: metric {metric!r} must be tg, pp, tg@N, pp@N or a workload like "
                        "encode:128 (value in ms)") from None


def recipe_for_format(graph: ModelGraph, quant: str, bpw: str) -> CompressionConfig:
    """The recipe storing the model like a runtime file type (its per-tensor mixture, embeddings and output
    included); a name that is not a known file type falls back to one group-wise format of `bpw` bits."""
    from search.formats.filetypes import canonical_filetype, recipe_for_filetype

    quant = (quant or "").strip()
    try:
        return recipe_for_filetype(graph, canonical_filetype(quant))
    except RecipeError:
        pass  # not a file type devicefit knows: use the bits per weight the row gives
    try:
        b = float(bpw)
    except ValueError:
        raise SpecError(f"unknown weight format {quant!r} and no bits per weight (bpw) given") from None
    bits = max([x for x in ALLOWED_BITS if x <= b] or [2])
    extra = b - bits
    group = None if bits == 16 or extra < 0.01 else 2 ** max(4, round(math.log2(16 / extra)))
    return CompressionConfig.uniform(bits=bits, group_size=group, symmetric=True)


@lru_cache(maxsize=64)
def runtime_graph(model: str) -> ModelGraph:
    """Graph of a model named in data/architectures.json, or of any model reference."""
    archs = json.loads((DATA_DIR / "architectures.json").read_text())
    if model in archs:
        return graph_from_config(archs[model])
    from search.models import load_graph

    return load_graph(model)


# ---- fitting --------------------------------------------------------------------

def with_factors(profile: DeviceProfile, values: dict[str, float]) -> DeviceProfile:
    eff = profile.efficiency.model_dump() | values
    return profile.model_copy(update={"efficiency": Efficiency(**eff)})


def errors(profile: DeviceProfile, cases: list[Case]) -> list[float]:
    """Relative errors (predicted / measured - 1) of each case."""
    return [c.predict_ms(profile) / c.measured_ms - 1 for c in cases]


def fit(profile: DeviceProfile, cases: list[Case], factors: tuple[str, ...] = FACTORS,
        iterations: int = 60) -> DeviceProfile:
    """The profile with `factors` fitted to `cases` (Levenberg-Marquardt on log factors)."""
    if not cases:
        raise SpecError("no measurements to calibrate against")
    bad = [f for f in factors if f not in FACTORS]
    if bad:
        raise SpecError(f"unknown efficiency factor(s) {', '.join(bad)}; choose from {', '.join(FACTORS)}")
    start = np.array([math.log(getattr(profile.efficiency, f)) for f in factors])
    lo = np.array([math.log(BOUNDS[f][0]) for f in factors])
    hi = np.array([math.log(BOUNDS[f][1]) for f in factors])
    measured = np.log([c.measured_ms for c in cases])

    def residuals(theta: np.ndarray) -> np.ndarray:
        prof = with_factors(profile, {f: float(math.exp(t)) for f, t in zip(factors, theta, strict=True)})
        pred = np.log([c.predict_ms(prof) for c in cases])
        return np.concatenate([pred - measured, math.sqrt(PRIOR_WEIGHT) * (theta - start)])

    theta, damping = np.clip(start, lo, hi), 1e-3
    r = residuals(theta)
    for _ in range(iterations if factors else 0):
        jac = np.empty((r.size, theta.size))
        for j in range(theta.size):
            step = np.zeros_like(theta)
            step[j] = 1e-4 if theta[j] + 1e-4 <= hi[j] else -1e-4  # stay inside the bounds (efficiency <= 1)
            jac[:, j] = (residuals(theta + step) - r) / step[j]
        grad, hess = jac.T @ r, jac.T @ jac
        trial = np.clip(theta - np.linalg.solve(hess + damping * np.diag(np.diag(hess) + 1e-9), grad), lo, hi)
        r_trial = residuals(trial)
        if r_trial @ r_trial < r @ r:
            converged = r @ r - r_trial @ r_trial < 1e-12
            theta, r, damping = trial, r_trial, damping / 3
            if converged:
                break
        else:
            damping *= 10
            if damping > 1e8:
                break
    fitted = with_factors(profile, {f: round(float(math.exp(t)), 4) for f, t in zip(factors, theta, strict=True)})
    errs = errors(fitted, cases)
    stats = {"rows": len(cases), "median_abs_error": round(float(np.median(np.abs(errs))), 4),
             "max_abs_error": round(float(np.max(np.abs(errs))), 4)}
    return fitted.model_copy(update={"calibration": stats})


def sensitivities(profile: DeviceProfile, cases: list[Case], step: float = 0.01) -> np.ndarray:
    """[case, factor] d log(predicted time) / d log(factor), by a small step down (efficiencies may sit at 1)."""
    base = np.log([c.predict_ms(profile) for c in cases])
    out = np.empty((len(cases), len(FACTORS)))
    for j, f in enumerate(FACTORS):
        moved = with_factors(profile, {f: getattr(profile.efficiency, f) * math.exp(-step)})
        out[:, j] = (np.log([c.predict_ms(moved) for c in cases]) - base) / -step
    return out


def identifiable_factors(cases: list[Case]) -> tuple[str, ...]:
    """Factors the cases identify: memory from decode rows, compute from prompt / encode rows."""
    if not cases:
        raise SpecError("no measurements to calibrate against")
    kinds = {c.workload.kind for c in cases}
    return tuple(f for f, needs in (("compute", {"prefill", "encode"}), ("memory", {"decode"})) if kinds & needs)


def calibrated(profile: DeviceProfile, cases: list[Case], source: str,
               factors: tuple[str, ...] | None = FACTORS) -> DeviceProfile:
    """A new version of the profile fitted to `cases`, naming the measurements among its sources.

    factors=None fits only the identifiable ones."""
    if factors is None:
        factors = identifiable_factors(cases)
    fitted = fit(profile, cases, factors)
    note = f"calibrated against {source} ({len(cases)} rows)"
    sources = tuple(s for s in fitted.sources if not s.startswith("calibrated against ")) + (note,)
    return fitted.model_copy(update={"version": profile.version + 1, "sources": sources})
