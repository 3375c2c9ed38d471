"""The iceberg chart lays its labels out so that none overlaps another or another brain's bar."""

from __future__ import annotations

import itertools
import re

import pytest

from brainbench.report.svg import iceberg, iceberg_layout, overlaps


def crowded(n: int) -> list[dict]:
    return [{"label": f"qwen3-coder-30b-a3b-instruct-q4_k_m (run-{i:02d}-with-a-long-dir)", "attempts": 1200 + i,
             "clean": 987 + i, "visible": 1000 * (i % 3), "invisible": 1234 + i, "retry": 567 * (i % 2)}
            for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 5, 8, 12])
def test_no_label_overlaps_another_label_or_another_bar(n):
    lay = iceberg_layout(crowded(n))
    boxes = [lab.box() for lab in lay["labels"]]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not overlaps(a, b), (lay["labels"][i].text, lay["labels"][j].text)
    bars = [(x, y, x + w, y + h) for x, y, w, h, *_ in lay["bars"] if h > 0]
    for lab, box in zip(lay["labels"], boxes):
        assert 0 <= box[0] and box[2] <= lay["width"], lab.text  # inside the chart
        for bar in bars:  # a bar's own labels sit above it or beside it, never on a bar
            assert not overlaps(box, bar), lab.text


def test_the_old_fixed_width_would_have_overlapped():
    # eight brains in 680 px: 82 px a column, narrower than "1201 attempts, 988 clean" alone
    lay = iceberg_layout(crowded(8))
    assert lay["width"] > 680
    assert max(lab.width for lab in lay["labels"] if "attempts" in lab.text) > 660 / 8


def test_svg_names_shortened_with_the_full_name_in_the_tooltip():
    svg = str(iceberg(crowded(3)))
    full = "qwen3-coder-30b-a3b-instruct-q4_k_m (run-00-with-a-long-dir)"
    assert f"<title>{full}: 0 failures with an error line</title>" in svg
    assert re.search(r'font-weight="600">qwen3-coder-30b-a3b-in[^<]*…</text>', svg)
    assert f'viewBox="0 0 {iceberg_layout(crowded(3))["width"]} 320"' in svg  # drawn at the laid-out width
