"""SearchSpec: the ONE request schema.

It is the CLI's parsed arguments, the API's request body and a worker's input.
Quantities keep their units as written ("200ms", "64MB") so the JSON a user
sends is the JSON they get back; parsed values are properties.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from search.data_policy import DEFAULT_CALIB_ROWS, DataPolicy
from search.errors import SpecError
from search.recipe import ALLOWED_BITS, describe_validation_error
from search.units import parse_bytes, parse_duration_ms
from search.workload import Workload

Axis = Literal["bits", "sparsity", "rank", "width", "depth"]
Objective = Literal["quality", "latency", "memory"]
Sampler = Literal["nsga2", "tpe", "gp", "random"]
Granularity = Literal["layer", "block", "role", "model"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unit_checked(parser, what: str):
    def check(v: str | None) -> str | None:
        if v is not None:
            try:
                parser(v, what)
            except SpecError as exc:
                raise ValueError(str(exc)) from None
        return v
    return check


class Budget(_Frozen):
    """Constraints a candidate must meet to be feasible. Units are required."""

    max_latency: str | None = Field(None, description="e.g. '200ms', '1.5s'", examples=["200ms"])
    max_memory: str | None = Field(None, description="e.g. '64MB', '2GB'", examples=["64MB"])

    _lat = field_validator("max_latency")(_unit_checked(parse_duration_ms, "max_latency"))
    _mem = field_validator("max_memory")(_unit_checked(parse_bytes, "max_memory"))

    @property
    def latency_ms(self) -> float | None:
        return None if self.max_latency is None else parse_duration_ms(self.max_latency)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.max_memory is None else parse_bytes(self.max_memory)


class SearchSpace(_Frozen):
    """Which compression axes the search explores, their choices, and the layer granularity."""

    axes: tuple[Axis, ...] = ("bits", "sparsity", "rank", "width", "depth")
    granularity: Granularity = Field("role", description="one choice per layer, per block, per role, or one for the model")
    # strict numbers: JSON true is not 1 (lax parsing took `"depth": [true]` for a full-depth choice)
    bits: tuple[StrictInt, ...] = (16, 8, 6, 5, 4, 3, 2)
    group_sizes: tuple[StrictInt, ...] = (32, 128)
    sparsity: tuple[StrictFloat, ...] = (0.0, 0.25, 0.5)
    sparsity_patterns: tuple[Literal["unstructured", "2:4", "channel"], ...] = ("unstructured", "2:4")
    sparsity_scores: tuple[Literal["magnitude", "wanda"], ...] = Field(
        ("magnitude", "wanda"), description="how pruned weights may be chosen: |W|, or Wanda's |W|*||x|| "
                                            "(calibration data); each group picks one")
    sparsity_score: Literal["magnitude", "wanda"] | None = Field(
        None, description="older form of sparsity_scores with one score (kept so saved specs still parse)")
    # GPTQ by default: it is what makes 3-4 bits usable (demo:minilm Q4_0 cosine 0.958 -> 0.979), and with
    # the layer-variant cache each (layer, setting, structure) is rounded once per search: a 20-trial
    # demo:minilm search on rpi5 took 61 s with it against 43 s without (docs/search.md)
    methods: tuple[Literal["rtn", "gptq"], ...] = Field(
        ("rtn", "gptq"), description="how quantized weights may be rounded: round-to-nearest, or GPTQ "
                              "(calibration data); each group picks one, e.g. ['rtn', 'gptq']")
    ranks: tuple[StrictFloat, ...] = Field((1.0, 0.5, 0.25), description="fractions of full rank; 1.0 = not factorised")
    width: tuple[StrictFloat, ...] = (1.0, 0.75, 0.5)
    depth: tuple[StrictFloat, ...] = Field((1.0, 0.83, 0.67, 0.5), description="fractions of blocks kept")

    @model_validator(mode="before")
    @classmethod
    def _one_score_is_a_choice_of_one(cls, data: object) -> object:
        """A spec written before sparsity_scores (one ``sparsity_score``) searched that score only."""
        if not isinstance(data, dict) or data.get("sparsity_score") is None:
            return data
        if "sparsity_scores" not in data:
            return {**data, "sparsity_scores": (data["sparsity_score"],)}
        if data["sparsity_score"] not in data["sparsity_scores"]:
            raise ValueError(f"sparsity_score {data['sparsity_score']!r} is not among sparsity_scores "
                             f"{list(data['sparsity_scores'])}; give sparsity_scores only")
        return data

    @field_validator("group_sizes")
    @classmethod
    def _group_sizes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(g < 1 for g in v):
            raise ValueError(f"group_sizes {list(v)}: give at least one, each a positive number of weights")
        return v

    @field_validator("sparsity_scores", "methods", "sparsity_patterns")
    @classmethod
    def _some_choice(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("give at least one choice")
        return tuple(dict.fromkeys(v))

    @field_validator("bits")
    @classmethod
    def _bits(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [b for b in v if b not in ALLOWED_BITS]
        if bad or not v:
            raise ValueError(f"bits choices {list(v)}: each must be one of {list(ALLOWED_BITS)}")
        return v

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 <= s < 1 for s in v):
            raise ValueError(f"sparsity choices {list(v)} must be in [0, 1)")
        return v

    @field_validator("ranks", "width", "depth")
    @classmethod
    def _fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 < f <= 1 for f in v):
            raise ValueError(f"choices {list(v)} must be fractions in (0, 1]")
        return v


class SearchSpec(_Frozen):
    """A compression search request."""

    model: str = Field("demo:minilm", description="directory, config.json, Hub id or demo:minilm")
    device: str = Field("rpi5", description="device profile name (GET /devices lists them)")
    workload: str = Field("encode:128", description="encode:N, prefill:N or decode:N")
    budget: Budget = Budget(max_latency="40ms")  # 16-bit demo model: ~55ms predicted on rpi5, a real trade-off
    trials: StrictInt = Field(40, ge=1, le=100_000, description="number of search trials")
    time_limit: str | None = Field(None, description="stop after this long, e.g. '10m'")
    objectives: tuple[Objective, ...] = ("quality", "latency", "memory")
    space: SearchSpace = SearchSpace()
    seed: StrictInt = 0
    sampler: Sampler = "nsga2"
    calibration_text: str | None = Field(None, description="calibration/evaluation text; default: an offline corpus")
    calib_samples: StrictInt = Field(16, ge=1, le=4096, description="sequences for the quality evaluation")
    calib_rows: StrictInt = Field(DEFAULT_CALIB_ROWS, ge=1, le=4096,
                            description="sequences for data-aware transforms (Wanda scores, width importance)")
    seq_len: StrictInt = Field(128, ge=8, le=8192, description="tokens per calibration sequence")
    # after calib_samples and seq_len: its validator reads them
    eval_text: str | None = Field(None, description="your own held-out text quality is measured on (all of it); "
                                                    "default: the evaluation part of calibration_text")
    measure: bool = Field(False, description="measure latency on this host instead of predicting it")
    recover: str | None = Field(None, description="recovery training for finalists, e.g. '200steps' or '30s'")
    storage: str | None = Field(None, description="Optuna storage URL; default a SQLite file")
    study_name: str | None = Field(None, description="default: derived from the spec")

    @field_validator("workload")
    @classmethod
    def _workload(cls, v: str) -> str:
        try:
            Workload.parse(v)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        return v

    _time = field_validator("time_limit")(_unit_checked(parse_duration_ms, "time_limit"))

    @field_validator("recover")
    @classmethod
    def _recover_budget(cls, v: str | None) -> str | None:
        if v is not None:
            from search.recovery.budget import parse_budget  # '200steps' or a time like '30s'

            try:
                parse_budget(v)
            except SpecError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("eval_text")
    @classmethod
    def _eval_text(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not v.strip():
            raise ValueError("eval_text is empty; give held-out text to score on, or leave it out")
        try:
            have = len(v.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"eval_text has a lone surrogate at character {exc.start} (not valid Unicode "
                             "text); send UTF-8 text") from None
        # a token covers at least one byte (plus one for a tokenizer's leading space) and an encoder's
        # row holds seq_len - 2 text tokens: fewer bytes can never fill the rows. The exact count needs
        # the model's tokenizer (search.evaluation.check_eval_rows).
        rows, seq_len = info.data.get("calib_samples"), info.data.get("seq_len")
        if rows is not None and seq_len is not None and have + 1 < rows * (seq_len - 2):
            raise ValueError(f"eval_text has {have:,} bytes, so at most {have + 1:,} tokens, but {rows} "
                             f"evaluation rows (calib_samples) of seq_len {seq_len} need about "
                             f"{rows * (seq_len - 2):,}; give a longer text, fewer calib_samples or a shorter "
                             "seq_len")
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError("objectives must be distinct, e.g. ['quality', 'latency', 'memory']")
        return v

    @model_validator(mode="after")
    def _needs_quality(self) -> SearchSpec:
        if "quality" not in self.objectives:
            raise ValueError("objectives must include 'quality' (a front of latency and memory alone is "
                             "just the smallest model)")
        return self

    @property
    def parsed_workload(self) -> Workload:
        return Workload.parse(self.workload)

    @property
    def data_policy(self) -> DataPolicy:
        """The text and rows every candidate of this search is built and scored with."""
        return DataPolicy(text=self.calibration_text, eval_text=self.eval_text, calib_rows=self.calib_rows,
                          eval_rows=self.calib_samples, seq_len=self.seq_len, seed=self.seed)

    @property
    def time_limit_s(self) -> float | None:
        return None if self.time_limit is None else parse_duration_ms(self.time_limit) / 1000


def parse_spec(data: str | bytes | dict) -> SearchSpec:
    """A SearchSpec from JSON text or a dict; errors become one SpecError line naming the field."""
    try:
        if isinstance(data, str | bytes):
            return SearchSpec.model_validate_json(data)
        return SearchSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"invalid search spec: {describe_validation_error(exc)}") from None
