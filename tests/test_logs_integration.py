"""`watch` and `logs llama` against the real embedded llama-server (started with --metrics) and
brain-small: the /metrics text and the slot timing lines of the real binary, not samples."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import httpx
import pytest

from brainbench.logs import llama, watch

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from brainbench.backend import binary, ensure_brain

    model = ensure_brain("brain-small")
    exe = binary("llama-server")
    if exe is None:
        pytest.skip("llama-server is not built")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--metrics",
                                 "-c", "2048", "--parallel", "2", "--log-timestamps", "--log-prefix", "--no-webui",
                                 "--alias", "brain-small"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"llama-server exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_watch_and_logs_llama_on_the_real_server(server, tmp_path):
    base, log = server
    stop = threading.Event()
    rec = threading.Thread(target=watch.record, args=(f"{base}/metrics", tmp_path),
                           kwargs={"interval": 1.0, "label": "brain-small", "should_stop": stop.is_set})
    rec.start()
    try:
        def ask(i: int) -> None:
            # ignore_eos: a request long enough (~2 s and up) that a 1 s scrape sees it running, however fast the CPU
            r = httpx.post(f"{base}/v1/chat/completions", timeout=600, json={
                "model": "brain-small", "max_tokens": 96, "ignore_eos": True, "temperature": 0,
                "messages": [{"role": "user", "content": f"Count from 1 to 5 ({i})."}]})
            assert r.status_code == 200

        time.sleep(1.5)
        ask(0)  # alone
        both = [threading.Thread(target=ask, args=(i,)) for i in (1, 2)]  # two slots at once
        [t.start() for t in both]
        [t.join() for t in both]
        time.sleep(2.5)
    finally:
        stop.set()
        rec.join(30)
    r = watch.report(tmp_path)
    assert r["parse"]["failed_scrapes"] == 0 and r["parse"]["windows"] >= 3
    busy = [b for b in r["buckets"] if b["running"] >= 1]
    assert busy and max(b["gen_tps_mean"] for b in busy) > 0  # live slot decodes, not end-of-request credit
    assert all(b["label"] == "brain-small" for b in r["buckets"])

    lr = llama.analyze([log])
    assert lr["requests"] == 3 and lr["parse"]["unpaired_timing_lines"] == 0
    assert sum(b["gen_tokens"] for b in lr["buckets"]) >= 3 * 96  # ignore_eos held each request to 96 tokens
    assert lr["requests_per_min"] is not None  # --log-timestamps
    assert {b["running"] for b in lr["buckets"]} <= {1, 2}
