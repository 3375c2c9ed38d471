"""The typed report model: what `data.build_report` builds and every registered output reads.

The top two levels are typed (the report, one entry per brain); the figures inside (summaries, curves,
speed legs, transcripts) stay the plain JSON-shaped dicts the scorer and the speed legs produce, so the
export contract and the views share one shape. Anything a run did not measure is None or empty, and the
outputs say "not measured" / "unknown" instead of failing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Figure = dict[str, Any]
"""A JSON-shaped figure (a rate with its CI, a decode figure, a curve point, ...)."""


class Entry(BaseModel):
    """One brain of one run directory: a column of the report."""

    model_config = ConfigDict(extra="forbid")

    model: str
    """Model name as stored with the attempts (or the speed legs)."""
    label: str
    """Name shown; the run directory is added where a model appears twice."""
    run_dir: str
    """The run directory it came from."""
    run_name: str
    """The run directory's last path part."""
    speed_only: bool = False
    """Only `brainbench speed` legs are stored: every discipline rate is "not measured", never 0."""
    speed_legs: Figure | None = None
    """Details of the stored speed legs (decode, prefill, agent, energy by GPU, roofline), if any."""
    summary: Figure
    """The scorer's summary: `overall` and `packs` rates, failures by class, infra errors."""
    rows: list[Figure] = Field(default_factory=list)
    """Attempt rows (the export contract) of this brain."""
    decode: Figure | None = None
    """Decode tok/s shown (a speed leg's, else the run's own requests'): value, ci95, n, cv, source."""
    decode_own: Figure | None = None
    """Decode tok/s measured on the run's own requests."""
    curves: list[Figure] = Field(default_factory=list)
    """Concurrency curves: {name, source, points: [{concurrency, gen_tps_aggregate, ...}]}."""
    energy: list[Figure] = Field(default_factory=list)
    """Energy rows (watts, joules per token, tokens per kWh) with their source."""
    size_bytes: int | None = None
    """Model file size, None where unknown."""
    size_source: str = "unknown"
    """Where the size came from."""
    iceberg: Figure = Field(default_factory=dict)
    """Visible (error line) vs silent failures, by occurrence and by attempt."""
    soak: list[Figure] = Field(default_factory=list)
    """Soak results stored for this brain."""
    tasks_per_hour: Figure | None = None
    """Completed tasks per hour over the run's own span (two or more attempts)."""
    provenance: Figure = Field(default_factory=dict)
    """Where the numbers come from: backend, server, host, options, config hashes."""
    scenario_hashes: dict[str, set[str]] = Field(default_factory=dict)
    """Pack -> content hashes of its scenarios (a changed pack is flagged in comparisons)."""
    efficiency: Figure = Field(default_factory=dict)
    """Per-GB figures: clean %, pass %, tok/s per GB of model file."""
    failed: list[Figure] = Field(default_factory=list)
    """Attempts that failed, passed only after a retry, or were not scored, with transcripts (the first ones)."""
    id: str = ""
    """HTML anchor id (b0, b1, ...)."""
    color: str = ""
    """Colour of this brain in every chart."""
    useful: Figure | None = None
    """Useful throughput: clean tasks per hour per concurrency level, the chosen one, the run's own."""
    delta: Figure | None = None
    """Deltas against the matching baseline brain, None without one."""
    harness: str = "minimal"
    """The harness the run wrapped its scenarios in (`brainbench run --harness`): minimal or agent."""
    replicas: list[Figure] = Field(default_factory=list)
    """Per replica of a run spread over several endpoints (`report.replicas`): attempts, pass and clean rates,
    decode tok/s, attempts re-run there, why it died, its attempt keys, its comparisons with the other replicas
    (`verdict_vs_rest`, `decode_vs_rest`) and `flags` (why it answers differently beyond noise); empty for a run on
    one endpoint."""
    incomplete: Figure | None = None
    """An interrupted run: planned, stored and missing attempts and a one-line message; None when complete
    (or unknown: a run that recorded no plan)."""
    load_warnings: list[str] = Field(default_factory=list)
    """Timed legs run while the load average was above the core count (their timings may be slow), one line each."""
    noise: dict[str, Figure] = Field(default_factory=dict)
    """The noise floor per pack and "ALL" (`scoring.metrics.noise_floor`): attempts, scenarios, trials, the
    clean rate, its minimum detectable difference and the flip rate across trials; empty when speed-only."""


class LooseLog(BaseModel):
    """A mined server log tied to no brain: a series of its own in the charts."""

    label: str
    """The log file's stem."""
    curves: list[Figure]
    """Its concurrency curves."""
    color: str = ""
    """Colour of its series."""


class Report(BaseModel):
    """The whole report: the brains, the baseline, and what the outputs need to know up front."""

    model_config = ConfigDict(extra="forbid")

    title: str
    """Report title."""
    generated: str
    """When it was built (local time)."""
    entries: list[Entry]
    """One per brain, in the order given."""
    baseline: list[Entry] = Field(default_factory=list)
    """The baseline run's brains (for deltas), empty without --baseline."""
    baseline_dir: str | None = None
    """The baseline run directory."""
    packs: list[str] = Field(default_factory=list)
    """Every pack any brain ran, sorted."""
    failure_classes: list[str] = Field(default_factory=list)
    """Failure classes seen, most frequent first."""
    at_concurrency: int | None = None
    """Concurrency for the useful-throughput figure (None: each run's own)."""
    loose_logs: list[LooseLog] = Field(default_factory=list)
    """Server logs tied to no brain."""
    left_out: list[str] = Field(default_factory=list)
    """What a comparison left out to stay like with like (packs only one side ran), one line each."""
    realism: list[Figure] = Field(default_factory=list)
    """Per brain given runs of both harnesses: pass, clean, errors and calls written as text per 100 calls
    under minimal and agent, with 95% intervals, the differences and the compare verdict on the clean rate."""
    engines: list[Figure] = Field(default_factory=list)
    """Per embedded brain served by two engines (same weights: llama-server's GGUF, vLLM's bf16 from it): per
    pack pass, clean, strict and recovered pass, errors and text calls per 100 calls with 95% intervals, the
    compare verdict on the clean rate, and decode/TTFT/ITL by concurrency side by side."""

    @property
    def has_replicas(self) -> bool:
        """Any brain ran over several replicas."""
        return any(e.replicas for e in self.entries)

    @property
    def has_curves(self) -> bool:
        """Any concurrency curve to draw."""
        return any(e.curves for e in self.entries) or bool(self.loose_logs)

    @property
    def has_energy(self) -> bool:
        """Any energy figure to show."""
        return any(e.energy for e in self.entries)

    @property
    def has_speed_legs(self) -> bool:
        """Any speed-leg details to show."""
        return any(e.speed_legs for e in self.entries)

    @property
    def speed_only(self) -> bool:
        """Every brain is speed-only (the report leaves its discipline sections out)."""
        return all(e.speed_only for e in self.entries)

    @property
    def any_speed_only(self) -> bool:
        """Some brain is speed-only (its discipline cells say "not measured")."""
        return any(e.speed_only for e in self.entries)

    @property
    def incomplete(self) -> list[str]:
        """One banner line per brain (baseline included) whose run stopped before its plan was done."""
        return [f"{who}{e.label}: {e.incomplete['message']}" for who, e in self._all() if e.incomplete]

    @property
    def warnings(self) -> list[str]:
        """One line per timed leg of any brain run on a loaded machine."""
        return [f"{who}{e.label}: {w}" for who, e in self._all() for w in e.load_warnings]

    def _all(self) -> list[tuple[str, Entry]]:
        """Every brain with the word that tells a baseline's apart ("" or "baseline ")."""
        return [("", e) for e in self.entries] + [("baseline ", b) for b in self.baseline]

    @property
    def discipline_entries(self) -> list[Entry]:
        """The brains with measured discipline."""
        return [e for e in self.entries if not e.speed_only]
