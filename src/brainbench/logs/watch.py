"""`brainbench watch`: record a Prometheus `/metrics` endpoint into the run store while a real workload
runs, and build the same concurrency tables as the log miners from counters and gauges.

Each pair of consecutive scrapes is one window: generation and prompt tok/s are counter deltas over the
elapsed time, `running` is the running-requests gauge at the window's end (as vLLM's stats line reports
the scheduler state at log time), completions are the success-counter delta (vLLM only; llama-server
exports no request counter). llama-server credits `tokens_predicted_total` only when a request ends,
so for it generation is read from the live slot-decode count instead (see `_slot_decodes`).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from . import prom
from .common import LogInputError, counter_stats, rnd

DB_NAME = "brainbench.sqlite"


def ensure_schema(conn: sqlite3.Connection) -> None:
    """The metrics tables of the run store (kept in one place so they can move into `store/` as is)."""
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS metrics_scrapes (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          session TEXT NOT NULL, url TEXT NOT NULL, label TEXT, watts REAL,
          ts REAL NOT NULL, ok INTEGER NOT NULL, error TEXT, elapsed_s REAL
        );
        CREATE INDEX IF NOT EXISTS metrics_scrapes_session ON metrics_scrapes(session, ts);
        CREATE TABLE IF NOT EXISTS metrics_samples (
          scrape_id INTEGER NOT NULL REFERENCES metrics_scrapes(id),
          name TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS metrics_samples_scrape ON metrics_samples(scrape_id);
        """
    )


def open_db(run_dir: Path, create: bool = True) -> sqlite3.Connection:
    path = run_dir / DB_NAME
    if not create and not path.exists():
        raise LogInputError(f"{run_dir}: no {DB_NAME} (nothing recorded there yet)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        ensure_schema(conn)
    except (OSError, sqlite3.DatabaseError) as e:
        raise LogInputError(f"{path}: cannot open the run database ({e})") from None
    return conn


class Scraper:
    def __init__(self, url: str, timeout: float = 5.0, all_metrics: bool = False):
        self.url = url
        self.all = all_metrics
        self.client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def scrape(self) -> list[tuple[str, dict[str, str], float]]:
        try:
            r = self.client.get(self.url)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # a kept-alive connection the server closed between scrapes: once more on a fresh one; a second
            # failure (or a timeout) is a real gap and is recorded as one
            r = self.client.get(self.url)
        if r.status_code in (404, 501):
            hint = " (llama-server exports metrics only when started with --metrics)" if r.status_code == 501 else ""
            raise ScrapeError(f"{self.url} answered {r.status_code}{hint}")
        if r.status_code != 200:
            raise ScrapeError(f"{self.url} answered {r.status_code}")
        samples = [s for s in prom.parse(r.text) if self.all or prom.wanted(s[0])]
        if not samples:
            raise ScrapeError(f"{self.url}: no vLLM/llama.cpp/SGLang serving metrics in the answer")
        return samples


class ScrapeError(Exception):
    pass


def new_session_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def record(url: str, run_dir: Path, *, interval: float = 5.0, duration: float = 0.0, label: str | None = None,
           watts: float | None = None, all_metrics: bool = False, timeout: float = 5.0,
           on_scrape: Callable[[int, bool, str | None], None] | None = None,
           should_stop: Callable[[], bool] | None = None, session: str | None = None) -> str:
    """Scrape `url` every `interval` seconds for `duration` seconds (0: until interrupted) into
    `run_dir/brainbench.sqlite`. Returns the session id. The first scrape must succeed (a wrong URL
    fails at once); later failures are recorded and show up as gaps."""
    conn = open_db(run_dir)
    scraper = Scraper(url, timeout=timeout, all_metrics=all_metrics)
    session = session or new_session_id()
    try:
        try:
            first = scraper.scrape()
        except (httpx.HTTPError, ScrapeError) as e:
            raise LogInputError(f"cannot scrape {url}: {e}") from None
        t_start = time.monotonic()
        _store(conn, session, url, label, watts, time.time(), first, None, 0.0)
        n = 1
        if on_scrape:
            on_scrape(n, True, None)
        next_at = t_start + interval
        while True:
            if duration and time.monotonic() - t_start >= duration - 1e-6:
                break
            if should_stop and should_stop():
                break
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.25) if should_stop else delay)
                continue
            next_at += interval
            if duration and next_at - t_start > duration + interval:
                next_at = t_start + duration
            t0 = time.monotonic()
            ts = time.time()
            try:
                samples = scraper.scrape()
                _store(conn, session, url, label, watts, ts, samples, None, time.monotonic() - t0)
                ok, err = True, None
            except (httpx.HTTPError, ScrapeError) as e:
                err = str(e) or e.__class__.__name__
                _store(conn, session, url, label, watts, ts, [], err, time.monotonic() - t0)
                ok = False
            n += 1
            if on_scrape:
                on_scrape(n, ok, err)
    finally:
        scraper.close()
        conn.close()
    return session


def _store(conn, session, url, label, watts, ts, samples, error, elapsed) -> None:
    with conn:
        cur = conn.execute(
            "INSERT INTO metrics_scrapes (session, url, label, watts, ts, ok, error, elapsed_s) VALUES (?,?,?,?,?,?,?,?)",
            (session, url, label, watts, ts, 0 if error else 1, error, elapsed))
        sid = cur.lastrowid
        conn.executemany("INSERT INTO metrics_samples VALUES (?,?,?,?)",
                         [(sid, name, json.dumps(labels, sort_keys=True), value) for name, labels, value in samples])


# -- tables from the recording ----------------------------------------------------------------------------


def _pick(values: dict[str, float], names: tuple[str, ...]) -> float | None:
    for n in names:
        if n in values:
            return values[n]
        if n + "_total" in values:
            return values[n + "_total"]
    return None


def load_scrapes(run_dir: Path, session: str | None = None) -> list[dict[str, Any]]:
    conn = open_db(run_dir, create=False)
    try:
        q = "SELECT id, session, url, label, watts, ts, ok FROM metrics_scrapes"
        args: tuple = ()
        if session:
            q += " WHERE session=?"
            args = (session,)
        scrapes = [dict(zip(("id", "session", "url", "label", "watts", "ts", "ok"), r))
                   for r in conn.execute(q + " ORDER BY session, ts", args)]
        sums: dict[int, dict[str, float]] = defaultdict(dict)
        kv_names = set(prom.KV)
        for sid, name, total, n in conn.execute("SELECT scrape_id, name, SUM(value), COUNT(*) FROM metrics_samples "
                                                "GROUP BY scrape_id, name"):
            # counters and running gauges add up over engines and label sets; cache usage is averaged
            sums[sid][name] = total / n if name in kv_names else total
    finally:
        conn.close()
    for s in scrapes:
        s["values"] = sums.get(s["id"], {})
    return scrapes


def _slot_decodes(values: dict[str, float]) -> float | None:
    nd = _pick(values, ("llamacpp:n_decode",))
    per = _pick(values, ("llamacpp:n_busy_slots_per_decode",))
    return None if nd is None or per is None else nd * per


def windows_from_scrapes(scrapes: list[dict[str, Any]], max_gap: float = 60.0) -> list[dict[str, Any]]:
    """Consecutive successful scrapes of one session -> windows (rates over the elapsed time)."""
    out = []
    prev = None
    for s in scrapes:
        if not s["ok"]:
            continue
        if prev is not None and prev["session"] == s["session"]:
            dt = s["ts"] - prev["ts"]
            a, b = prev["values"], s["values"]
            gen0, gen1 = _pick(a, prom.GEN), _pick(b, prom.GEN)
            p0, p1 = _pick(a, prom.PROMPT), _pick(b, prom.PROMPT)
            running = _pick(b, prom.RUNNING)
            # llama-server adds a request's tokens to tokens_predicted only when it finishes; its
            # slot-decode count (n_decode_total x n_busy_slots_per_decode) moves live, one per token
            sd0, sd1 = _slot_decodes(a), _slot_decodes(b)
            if sd0 is not None and sd1 is not None and sd1 >= sd0 - 0.5:
                gen0, gen1 = sd0, max(sd0, sd1)
            if 0 < dt <= max_gap and gen0 is not None and gen1 is not None and running is not None and gen1 >= gen0:
                ok0, ok1 = _pick(a, prom.SUCCESS), _pick(b, prom.SUCCESS)
                kv = _pick(b, prom.KV)
                out.append({
                    "label": s["label"], "watts": s["watts"], "dt": dt, "running": int(round(running)),
                    "gen_tps": (gen1 - gen0) / dt,
                    "prompt_tps": (p1 - p0) / dt if p0 is not None and p1 is not None and p1 >= p0 else None,
                    "completions": (ok1 - ok0) if ok0 is not None and ok1 is not None and ok1 >= ok0 else None,
                    "waiting": _pick(b, prom.WAITING),
                    "kv": kv,
                })
        prev = s
    return out


def report(run_dir: Path, session: str | None = None, max_gap: float = 60.0) -> dict[str, Any]:
    scrapes = load_scrapes(run_dir, session)
    if not scrapes:
        raise LogInputError(f"{run_dir}: no recorded scrapes" + (f" for session {session}" if session else ""))
    wins = windows_from_scrapes(scrapes, max_gap)
    labelled = any(w["label"] for w in wins)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for w in wins:
        groups[(w["label"] or "", w["running"])].append(w)
    rows = []
    for (label, running), ws in sorted(groups.items()):
        g = counter_stats(Counter(round(w["gen_tps"], 3) for w in ws))
        pr = [w["prompt_tps"] for w in ws if w["prompt_tps"] is not None]
        act = [x for x in pr if x > 0]
        comp = [w["completions"] * 60.0 / w["dt"] for w in ws if w["completions"] is not None]
        kv = [w["kv"] for w in ws if w["kv"] is not None]
        row: dict[str, Any] = {"label": label} if labelled else {}
        row.update({
            "running": running, "samples": len(ws),
            "gen_tps_mean": rnd(g["mean"]), "gen_tps_median": rnd(g["median"]),
            "gen_tps_p95": rnd(g["p95"]), "gen_tps_peak": rnd(g["max"]),
            "per_request_tps": rnd(g["mean"] / running) if running and g["mean"] is not None else None,
            "prefill_tps_sustained": rnd(sum(pr) / len(pr)) if pr else None,
            "prefill_tps_active": rnd(sum(act) / len(act)) if act else None,
            "prefill_active_samples": len(act),
            "completions_per_min": rnd(sum(comp) / len(comp)) if comp else None,
            "kv_cache_usage_mean": rnd(100.0 * sum(kv) / len(kv)) if kv else None,
        })
        watts = next((w["watts"] for w in ws if w["watts"]), None)
        if watts:
            row["watts"] = watts
            row["gen_tps_per_kw"] = rnd(g["mean"] / (watts / 1000.0)) if g["mean"] is not None else None
            row["prefill_tps_per_kw"] = rnd((sum(act) / len(act)) / (watts / 1000.0)) if act else None
        rows.append(row)
    sessions = sorted({s["session"] for s in scrapes})
    return {
        "source": "metrics",
        "buckets": rows,
        "parse": {
            "run_dir": str(run_dir),
            "sessions": sessions,
            "urls": sorted({s["url"] for s in scrapes}),
            "scrapes": len(scrapes),
            "failed_scrapes": sum(1 for s in scrapes if not s["ok"]),
            "windows": len(wins),
            "span_s": round(max(s["ts"] for s in scrapes) - min(s["ts"] for s in scrapes), 1),
        },
        "notes": ["windows are consecutive scrapes; 'running' is the gauge at the window's end. llama-server "
                  "credits tokens_predicted only when a request finishes, so for it gen tok/s is taken from the "
                  "live slot-decode count (n_decode_total x n_busy_slots_per_decode: one per generated token, "
                  "plus one per prompt batch); it exports no request counter, so no completions/min."],
    }
