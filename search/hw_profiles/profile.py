"""DeviceProfile: how one device, with the runtime that runs the model on it, turns work into time.

Profiles are versioned YAML data under ``search/hw_profiles/data/`` (public facts
with their sources, plus efficiency factors fitted to published measurements);
a measured profile of this machine (``search-cli profile``) has the same shape
plus a ``measured`` section of micro-benchmark results.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from search.errors import DeviceError
from search.hw_profiles.gguf_costs import GgufTables
from search.recipe import ALLOWED_BITS, describe_validation_error

DATA_DIR = Path(__file__).parent / "data"
Dtype = Literal["fp32", "fp16", "bf16", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Efficiency(_Strict):
    """Fractions of the peaks the runtime reaches, fitted by calibration (search-cli calibrate)."""

    compute: float = Field(0.5, gt=0, le=1, description="fraction of peak FLOP/s reached by matrix products")
    memory: float = Field(0.6, gt=0, le=1, description="fraction of peak bandwidth reached when streaming weights")
    overhead: float = Field(1.0, gt=0, description="scale on the per-op / per-forward overheads")
    dequant: float = Field(1.0, gt=0, description="scale on the dequantisation cost")


class Overheads(_Strict):
    """Fixed costs the roofline does not see: kernel launches, framework dispatch, sampling."""

    op_us: float = Field(0.0, ge=0, description="per matrix product (kernel launch / dispatch)")
    block_us: float = Field(0.0, ge=0, description="per transformer block for norms, activations, attention glue")
    forward_us: float = Field(0.0, ge=0, description="per forward pass (embedding, sampling, synchronisation)")


class MeasuredTables(_Strict):
    """Micro-benchmark results of a measured host (absent from data-sheet profiles).

    A bf16 F.linear of m rows costs op(m) + max(weight bytes / stream rate, FLOPs / gflops(m)), with
    op(m) and gflops(m) interpolated (log-log) in the measured tables; the stream rate is the
    one-row rate (2 bytes per weight at gflops(1) / 2).
    """

    date: str
    threads: int
    clock: str = Field("cpu", description="cpu: process CPU time (robust to other load); wall: elapsed time")
    torch: str | None = Field(None, description="torch version timed (a PyTorch host); null for other runtimes")
    cpu: str
    linear_op_us_by_rows: dict[int, float] = Field(description="fixed cost of one F.linear call by rows")
    linear_gflops_by_rows: dict[int, float] = Field(description="bf16 matrix-product GFLOP/s by rows of the input")
    linear_fit_error: float = Field(description="median relative error of the linear model on the grid")

    @property
    def linear_stream_gbs(self) -> float:
        """bf16 weight bytes per second F.linear reaches with one row: 2 bytes per 2 FLOPs."""
        return self.linear_gflops_by_rows[min(self.linear_gflops_by_rows)]
    attention_op_us: float
    attention_gflops: float = Field(gt=0)
    attention_gflops_by_head_dim: dict[str, dict[int, float]] = Field(
        default_factory=dict, description="attention GFLOP/s by 'decode' / 'prefill' and head dim, when measured "
                                          "apart (llama.cpp: its kernels' speed depends on both)")
    copy_gbs: float = Field(gt=0, description="elementwise traffic rate (clone of a large tensor)")
    block_us: dict[str, float] = Field(description="fixed per-block framework cost by 'family:kind' (glue ops)")
    forward_us: dict[str, float] = Field(description="per-forward framework cost by 'family:kind'")
    elementwise_ns: dict[str, float] = Field(
        default_factory=dict, description="glue cost per activation element by 'family:kind'")
    dequant_cached: bool = Field(
        True, description="PackedLinear keeps its dequantized bf16 weight after the first call")
    dequant_ns_per_weight: dict[int, float] = Field(
        default_factory=dict, description="one-time cost to rebuild packed weights to bf16, by bits")
    # the linear grid times each matrix warm (<= 12.6 MB, from the CPU caches); a model whose weights
    # exceed the caches streams every weight from memory once per forward, at a lower rate
    cold_stream_gbs: float | None = Field(
        None, gt=0, description="bf16 weight bytes/s of one-row F.linear over a ring of distinct weights "
                                "larger than the caches (each weight touched once per pass, as in a forward)")
    warm_weight_bytes: int = Field(
        16 * 2**20, gt=0, description="weight sets up to this size run at the warm (grid) rates")
    gguf: GgufTables | None = Field(
        None, description="llama.cpp: ns per weight of matrix products by GGUF type and rows (replaces the bf16 "
                          "linear model for every layer; search.hw_profiles.gguf_costs)")
    load: str | None = Field(None, description="the machine's load average while it was measured (uptime)")


class DeviceProfile(_Strict):
    name: str
    version: int = Field(ge=1)
    description: str
    kind: Literal["cpu", "gpu"]
    compute_unit: str = Field(description="the compute the runtime uses, e.g. '4x Cortex-A76 @ 2.4 GHz'")
    runtime: str = Field(description="the runtime modelled, e.g. 'llama.cpp (CPU, 4 threads)'")
    threads: int | None = Field(
        None, ge=1, description="CPU threads the runtime runs (llama.cpp -t); the compute peaks count that many "
                                "cores. null: a GPU runtime, or a measured host")
    peak_gflops: dict[Dtype, float] = Field(description="dense peak throughput per dtype (GFLOP/s or GOP/s)")
    compute_dtype: Dtype = Field(description="dtype 16-bit layers compute in")
    quant_compute_dtype: Dtype = Field(description="dtype quantized layers compute in (after unpacking)")
    activation_bytes: int = Field(2, description="bytes per activation / KV-cache element")
    bandwidth_gbs: float = Field(gt=0, description="theoretical memory bandwidth, GB/s")
    memory_gb: float = Field(gt=0, description="memory capacity, GB")
    weight_formats: tuple[int, ...] = Field(
        description="weight bits the runtime stores natively; others run in the next larger supported format")
    sparsity: dict[str, float] = Field(
        default_factory=dict,
        description="sparsity patterns the runtime stores compactly -> the compute speed-up of its kernels "
                    "(1.0: smaller to read, no faster to multiply; channel pruning shrinks the rows instead)")
    dequant_ops_per_weight: float = Field(
        0.0, ge=0, description="extra operations per quantized weight per forward to unpack it (weak CPUs)")
    prefill_logits: Literal["last", "all"] = "last"
    power_w: dict[str, float] = Field(default_factory=dict)
    efficiency: Efficiency = Efficiency()
    overheads: Overheads = Overheads()
    sources: tuple[str, ...] = Field(min_length=1)
    notes: tuple[str, ...] = Field(default_factory=tuple, description="what is derived rather than published")
    calibration: dict[str, float] = Field(
        default_factory=dict, description="how well the factors fit: rows, median/max abs error")
    measured: MeasuredTables | None = None

    @field_validator("weight_formats")
    @classmethod
    def _formats(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if 16 not in v or any(b not in ALLOWED_BITS for b in v):
            raise ValueError(f"weight_formats {list(v)} must include 16 and use only {list(ALLOWED_BITS)}")
        return tuple(sorted(set(v)))

    @field_validator("peak_gflops")
    @classmethod
    def _peaks(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(x <= 0 for x in v.values()):
            raise ValueError("peak_gflops needs at least one positive entry")
        return v

    def peak(self, dtype: str) -> float:
        """Peak GFLOP/s of a dtype; a missing dtype runs at the slowest listed one (emulated)."""
        return self.peak_gflops.get(dtype, min(self.peak_gflops.values()))

    def with_threads(self, threads: int | None) -> DeviceProfile:
        """The profile running `threads` CPU threads: compute peaks scale with the cores in use, up to the
        profile's own count (more threads than the cores it models add nothing). Bandwidth is not scaled: a
        few cores already draw most of it on these devices, and no shipped data says how much."""
        if threads is None or self.threads is None or threads >= self.threads:
            return self
        scale = threads / self.threads
        return self.model_copy(update={"threads": threads,
                                       "peak_gflops": {k: v * scale for k, v in self.peak_gflops.items()}})

    def storage_bits(self, bits: int) -> int:
        """Bits the runtime actually stores: the smallest supported format holding `bits`."""
        return min(b for b in self.weight_formats if b >= bits)

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


NOT_PROFILES = {"runtimes"}  # data/runtimes.yaml: what each runtime can run (search.hw_profiles.runtimes)


def list_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml") if p.stem not in NOT_PROFILES)


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A shipped profile by name (``rpi5``) or a profile YAML file by path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise DeviceError(f"device profile file {text!r} does not exist")
        return _load_file(str(path.resolve()), path.stat().st_mtime)
    if text not in list_profiles():
        raise DeviceError(f"unknown device {text!r}; known devices: {', '.join(list_profiles())} "
                          "(or give a profile .yaml file)")
    file = DATA_DIR / f"{text}.yaml"
    return _load_file(str(file), file.stat().st_mtime)


@lru_cache(maxsize=64)
def _load_file(path: str, mtime: float) -> DeviceProfile:  # mtime keys the cache to the file's version
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise DeviceError(f"device profile {path!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DeviceError(f"device profile {path!r} must be a YAML mapping")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise DeviceError(f"device profile {path!r}: {describe_validation_error(exc)}") from None
