"""The HTML report in a real browser: Debian's headless Chromium driven by Selenium through Debian's chromedriver.

Needs `apt-get install -y chromium chromium-driver` and selenium (in the dev extra). Nothing is downloaded:
the driver and the browser are the system's. Skipped only when BRAINBENCH_SKIP_BROWSER=1; otherwise a
missing browser fails the test with the line that installs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from brainbench.report.render import write_report
from report_fixtures import SloppyBrain, good_brain, make_run

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars"]


def _browser():
    if os.environ.get("BRAINBENCH_SKIP_BROWSER") == "1":
        pytest.skip("BRAINBENCH_SKIP_BROWSER=1")
    chromium = os.environ.get("BRAINBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("BRAINBENCH_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("the report browser test needs Debian's Chromium and ChromeDriver: "
                    "apt-get install -y chromium chromium-driver (or set BRAINBENCH_SKIP_BROWSER=1 to skip it)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the report browser test needs selenium: pip install -e '.[dev]' (or set BRAINBENCH_SKIP_BROWSER=1)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try to download a driver
    profile = tempfile.mkdtemp(prefix="bb-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in FLAGS + [f"--user-data-dir={profile}", "--window-size=1300,1000"]:
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    drv.set_page_load_timeout(60)
    return drv, profile


def _errors(drv) -> list[str]:
    return [f"{e['level']}: {e['message']}" for e in drv.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _shot(drv, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert drv.save_screenshot(str(path)), path
    return path


def test_report_opens_clicks_through_to_a_transcript(tmp_path):
    drv, profile = _browser()
    try:
        good = make_run(tmp_path / "good", "brain-medium", good_brain, speed_scale=30.0, watts=200.0)
        sloppy = make_run(tmp_path / "sloppy", "brain-small", SloppyBrain(), speed_scale=90.0)
        html = tmp_path / "report.html"
        write_report([good, sloppy], html=html)

        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        drv.get(html.as_uri())
        assert drv.execute_script("return document.readyState") == "complete"
        assert drv.title.startswith("brainbench:")
        assert _errors(drv) == []
        assert len(drv.find_elements(By.CSS_SELECTOR, "#scatter svg g.pt")) == 2
        # transcripts stay hidden until asked for
        assert not any(a.is_displayed() for a in drv.find_elements(By.CSS_SELECTOR, "article.transcript"))
        _shot(drv, "report-overview.png")

        # the failure filter hides what it should
        rows = drv.find_elements(By.CSS_SELECTOR, "#failure-table tbody tr")
        Select(drv.find_element(By.ID, "fail-filter")).select_by_value("class:unknown_tool")
        shown = [r for r in rows if r.is_displayed()]
        assert 0 < len(shown) < len(rows)
        assert all("unknown_tool" in r.text for r in shown)

        # click through to the transcript of the hallucinated-tool attempt
        link = shown[0].find_element(By.CSS_SELECTOR, "a.open")
        target = link.get_attribute("href").split("#", 1)[1]
        drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        link.click()
        deadline = time.monotonic() + 10
        art = drv.find_element(By.ID, target)
        while not art.is_displayed() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert art.is_displayed(), "the transcript opens on click"
        assert drv.execute_script("return location.hash") == f"#{target}"
        failing = art.find_elements(By.CSS_SELECTOR, ".turn.failing")
        assert failing and failing[0].is_displayed()
        marks = [m.text for m in art.find_elements(By.CSS_SELECTOR, "code.cls.mark")]
        assert "unknown_tool" in marks, marks
        assert "get_wether" in art.text
        time.sleep(0.1)
        _shot(drv, "report-transcript.png")

        # and back
        art.find_element(By.CSS_SELECTOR, "p.back a").click()
        assert drv.execute_script("return location.hash") == "#failures"
        assert not art.is_displayed()
        assert _errors(drv) == [], "console errors while clicking through"
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert (ARTIFACTS / "report-transcript.png").stat().st_size > 10_000
