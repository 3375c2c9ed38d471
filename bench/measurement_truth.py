"""Measurement truth: brainbench (and GuideLLM) against a server that streams on a known schedule.

    .venv/bin/python bench/measurement_truth.py                 # c=1 and c=64, GuideLLM side by side, search
    .venv/bin/python bench/measurement_truth.py --no-guidellm --no-search

The in-repo timing server (brainbench.perf.timing_server) answers every request with TTFT = --ttft-ms,
then --tokens tokens, one per chunk, --itl-ms apart, on an absolute schedule. brainbench's `speed --legs
sweep` runs against it at each level; its median TTFT and ITL must be within 2% of the schedule and the
p99 within 5%. GuideLLM (installed in a separate venv, `bench/setup_guidellm.sh`) runs the same load
against the same server and both errors are printed side by side (ours must be no worse, allowing
0.5 points of noise). Then the concurrency is raised until brainbench's ITL error (median or p99)
reaches 5%: the largest level below that is what brainbench sustains on this machine.

Both clients run at the same priority (--nice, default 0). The reference server runs at a raised
priority (--server-nice, default -10, where permitted) so it holds its schedule on a shared machine;
its own lateness and what it actually delivered are printed too, so server error and client error
can be told apart. Clients are compared against the schedule, never against the server's delivery.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GUIDELLM = ROOT / ".venv-bench" / "bin" / "guidellm"
TOKENIZER = Path(os.environ.get("BRAINBENCH_CACHE", Path.home() / ".cache" / "brainbench")) / "tokenizers" / "brain-small"

LIMITS = {"median": 0.02, "p99": 0.05}
NOISE = 0.005


def niced(n: int, realtime: bool = False):
    def pre() -> None:
        if realtime:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
                return
            except (OSError, AttributeError):
                pass
        if n:
            try:
                os.nice(n)
            except OSError:
                pass
    return pre


def server_priority() -> str:
    """What the reference server will get (probed in a throwaway child)."""
    probe = subprocess.run([PY, "-c", "import os; print(os.sched_getscheduler(0) == os.SCHED_FIFO, os.nice(0))"],
                           capture_output=True, text=True, preexec_fn=niced(-10, True))
    fifo, nice = (probe.stdout.split() + ["False", "0"])[:2]
    return "SCHED_FIFO 1" if fifo == "True" else f"nice {nice}"


class Server:
    def __init__(self, args: argparse.Namespace):
        self.args = args

    def __enter__(self) -> "Server":
        a = self.args
        cmd = [PY, "-m", "brainbench.perf.timing_server", "--ttft-ms", str(a.ttft_ms), "--itl-ms", str(a.itl_ms),
               "--tokens", str(a.tokens), "--role", "immediate"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=niced(a.server_nice, a.server_rt))
        info = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]
        self.base_url, self.port = info["base_url"], info["port"]
        self.root = self.base_url.removesuffix("/v1")
        return self

    def reset(self) -> None:
        httpx.post(self.root + "/stats/reset", timeout=10)

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.root + "/stats", timeout=30).json()

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def err(measured: float | None, truth: float) -> float | None:
    return None if measured is None else abs(measured - truth) / truth


def run_brainbench(srv: Server, c: int, n: int, a: argparse.Namespace) -> dict[str, Any]:
    srv.reset()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [PY, "-m", "brainbench", "speed", "--endpoint", srv.base_url, "--model", "timing-model",
               "--legs", "sweep", "--concurrency", str(c), "--gen-tokens", str(a.tokens), "--prompt-tokens", "64",
               "--requests-per-level", str(n), "--energy", "off", "--client", a.client, "--json", "--out", tmp]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=niced(a.nice), timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"brainbench failed: {proc.stderr[-2000:]}")
        lv = json.loads(proc.stdout)["sweep"][0]
    st = srv.stats()
    return {"ttft": {"median": lv["ttft_ms_median"], "p99": lv["ttft_ms_p99"]},
            "itl": {"median": lv["itl_ms_median"], "p99": lv["itl_ms_p99"]},
            "requests": lv["requests"], "errors": lv["errors"], "seconds": round(time.monotonic() - t0, 1),
            "server": server_summary(st, n)}


def server_summary(st: dict[str, Any], last: int) -> dict[str, Any]:
    reqs = [r for r in st["requests"] if r.get("ttft_delivered_ms") is not None][-last:]

    def med(xs: list[float]) -> float | None:
        xs = sorted(xs)
        return round(xs[len(xs) // 2], 3) if xs else None

    def p99(xs: list[float]) -> float | None:
        xs = sorted(xs)
        if not xs:
            return None
        pos = (len(xs) - 1) * 0.99
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 3)

    ttft = [r["ttft_delivered_ms"] for r in reqs]
    itl = [r["itl_delivered_ms"] for r in reqs if r["itl_delivered_ms"]]
    return {"lateness_ms": st["server_lateness_ms"],
            "delivered_ttft_ms_median": med(ttft), "delivered_ttft_ms_p99": p99(ttft),
            "delivered_itl_ms_median": med(itl), "delivered_itl_ms_p99": p99(itl)}


def run_guidellm(srv: Server, c: int, n: int, a: argparse.Namespace) -> dict[str, Any] | None:
    if not GUIDELLM.exists():
        return None
    srv.reset()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [str(GUIDELLM), "run",
               "--backend", f"kind=openai_http,target={srv.root},model=timing-model,request_format=/v1/chat/completions",
               "--profile", f"kind=concurrent,streams={c}",
               "--constraint", f"kind=max_requests,count={n}",
               "--data", f"kind=synthetic_text,prompt_tokens=64,output_tokens={a.tokens}",
               "--tokenizer", f"kind=huggingface_auto,model={TOKENIZER}",
               "--output", f"kind=json,path={out}", "--disable-console"]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=niced(a.nice), timeout=1800,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            print(f"  GuideLLM failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}", file=sys.stderr)
            return None
        m = json.loads(out.read_text())["benchmarks"][0]["metrics"]
    st = srv.stats()

    def pick(name: str) -> dict[str, float]:
        s = m[name]["successful"]
        return {"median": s["median"], "p99": s["percentiles"]["p99"]}

    return {"ttft": pick("time_to_first_token_ms"), "itl": pick("inter_token_latency_ms"),
            "requests": m["request_totals"]["successful"], "errors": m["request_totals"]["errored"],
            "seconds": round(time.monotonic() - t0, 1), "server": server_summary(st, n)}


def worst(*errors: float | None) -> float:
    """The largest error; a missing figure counts as a failure (1.0)."""
    return max(1.0 if e is None else e for e in errors)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def pct(e: float | None) -> str:
    return "n/a" if e is None else f"{e * 100:.2f}%"


def compare(level: int, truth: dict[str, float], ours: dict[str, Any], theirs: dict[str, Any] | None) -> tuple[list[list[str]], bool]:
    rows, ok = [], True
    for metric in ("ttft", "itl"):
        for stat in ("median", "p99"):
            t = truth[metric]
            e_ours = err(ours[metric][stat], t)
            e_theirs = err(theirs[metric][stat], t) if theirs else None
            within = e_ours is not None and e_ours <= LIMITS[stat]
            no_worse = e_theirs is None or (e_ours is not None and e_ours <= e_theirs + NOISE)
            ok = ok and within and no_worse
            rows.append([f"c={level}", f"{metric.upper()} {stat}", f"{t:.1f}", f"{ours[metric][stat]:.2f}", pct(e_ours),
                         "n/a" if not theirs else f"{theirs[metric][stat]:.2f}", pct(e_theirs),
                         f"{LIMITS[stat] * 100:.0f}%", "PASS" if within and no_worse else "FAIL"])
    return rows, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ttft-ms", type=float, default=200.0)
    ap.add_argument("--itl-ms", type=float, default=20.0)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--levels", default="1,64")
    ap.add_argument("--requests", type=int, default=128, help="requests per level (c=1 uses --requests-c1)")
    ap.add_argument("--requests-c1", type=int, default=50)
    ap.add_argument("--client", default="raw", choices=("raw", "httpx"))
    ap.add_argument("--no-guidellm", action="store_true")
    ap.add_argument("--no-search", action="store_true")
    ap.add_argument("--search-max", type=int, default=1024)
    ap.add_argument("--nice", type=int, default=0, help="niceness of both clients (brainbench and GuideLLM alike)")
    ap.add_argument("--server-nice", type=int, default=-10,
                    help="niceness of the reference server (raised by default so it holds its schedule on a busy machine)")
    ap.add_argument("--no-server-rt", dest="server_rt", action="store_false",
                    help="do not try SCHED_FIFO for the reference server (it sleeps between writes; RT only makes it wake on time)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    a = ap.parse_args()
    truth = {"ttft": a.ttft_ms, "itl": a.itl_ms}
    guide = not a.no_guidellm and GUIDELLM.exists()
    if guide and not (TOKENIZER / "tokenizer.json").exists():
        print(f"making the GuideLLM tokenizer from the brain-small GGUF into {TOKENIZER}", file=sys.stderr)
        subprocess.run([str(GUIDELLM.parent / "python"), str(ROOT / "bench" / "make_tokenizer.py"), str(TOKENIZER)],
                       check=True)
    cpu = os.cpu_count()
    load = os.getloadavg()[0]
    print(f"measurement truth: schedule TTFT {a.ttft_ms:g} ms, ITL {a.itl_ms:g} ms, "
          f"{a.tokens} tokens/request; {cpu} CPUs, load {load:.1f}; client {a.client}; reference server {server_priority() if a.server_rt else f'nice {a.server_nice}'}; "
          f"GuideLLM {'on' if guide else 'off (bench/setup_guidellm.sh)'}", flush=True)
    record: dict[str, Any] = {"schedule": truth | {"tokens": a.tokens}, "cpus": cpu, "load_start": load, "levels": []}
    rows = [["level", "figure", "truth ms", "brainbench", "error", "GuideLLM", "error", "limit", "verdict"]]
    all_ok = True
    with Server(a) as srv:
        for c in [int(x) for x in a.levels.split(",")]:
            n = a.requests_c1 if c == 1 else a.requests
            ours = run_brainbench(srv, c, n, a)
            theirs = run_guidellm(srv, c, n, a) if guide else None
            r, ok = compare(c, truth, ours, theirs)
            rows += r
            all_ok = all_ok and ok
            record["levels"].append({"concurrency": c, "requests": n, "brainbench": ours, "guidellm": theirs})
            for who, res in (("brainbench", ours), ("GuideLLM", theirs)):
                if res:
                    sv = res["server"]
                    print(f"  c={c} {who}: {res['requests']} requests, {res['errors']} errors, {res['seconds']}s; "
                          f"server lateness p50/p99 {sv['lateness_ms']['median']}/{sv['lateness_ms']['p99']} ms, "
                          f"delivered TTFT/ITL p50 {sv['delivered_ttft_ms_median']}/{sv['delivered_itl_ms_median']} ms",
                          flush=True)
        print()
        print(table(rows))
        print(f"\nmedians within {LIMITS['median'] * 100:.0f}%, p99 within {LIMITS['p99'] * 100:.0f}%, "
              f"no worse than GuideLLM (+{NOISE * 100:.1f} points): {'PASS' if all_ok else 'FAIL'}", flush=True)
        if not a.no_search:
            best, best_own, c, search = None, None, 64, []

            def probe(c: int) -> tuple[float, float]:
                res = run_brainbench(srv, c, 2 * c, a)
                sv = res["server"]
                e = worst(err(res["itl"]["median"], a.itl_ms), err(res["itl"]["p99"], a.itl_ms))
                own = worst(err(res["itl"]["median"], sv["delivered_itl_ms_median"]),
                            err(res["itl"]["p99"], sv["delivered_itl_ms_p99"]))
                search.append({"concurrency": c, "itl_error_vs_schedule": round(e, 4),
                               "itl_error_vs_delivered": round(own, 4), "brainbench": res["itl"], "server": sv})
                print(f"  search c={c}: ITL p50/p99 {res['itl']['median']:.2f}/{res['itl']['p99']:.2f} ms, "
                      f"error vs schedule {pct(e)}; server delivered {sv['delivered_itl_ms_median']}/"
                      f"{sv['delivered_itl_ms_p99']} ms, brainbench vs delivered {pct(own)}", flush=True)
                return e, own

            while c <= a.search_max:
                e, own = probe(c)
                if own < 0.05:
                    best_own = c
                if e >= 0.05:
                    break
                best = c
                c *= 2
            if best and c <= a.search_max:  # one bisection step between the last pass and the first failure
                mid = (best + c) // 2
                e, own = probe(mid)
                if e < 0.05:
                    best = mid
                if own < 0.05 and mid > (best_own or 0):
                    best_own = mid
            record["search"] = search
            record["sustained"] = best
            record["sustained_vs_delivered"] = best_own
            print(f"\nlargest concurrency with ITL error < 5% against the schedule on this machine: {best}"
                  + (f" (tried up to {a.search_max})" if best == a.search_max else ""))
            print(f"largest concurrency where brainbench's ITL is within 5% of what the server actually delivered: "
                  f"{best_own} (tried up to {min(c, a.search_max)})")
    record["pass"] = all_ok
    record["load_end"] = os.getloadavg()[0]
    if a.json:
        a.json.write_text(json.dumps(record, indent=2))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
