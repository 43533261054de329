"""The explorer's HTML export (Explorer.to_html): self-contained, no script, labels escaped."""

from __future__ import annotations

import html
import re
from pathlib import Path


def test_explorer_to_html(tmp_path: Path) -> None:
    from saliency_widget.widget import explore

    w = explore()
    try:
        w.wait(60)
        page = w.to_html(tmp_path / "view.html")
        assert (tmp_path / "view.html").read_text() == page
        srcs = re.findall(r'src="([^"]+)"', page)
        assert len(srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
        assert "Class probabilities" in page and "<script" not in page
        for label in w.labels:
            assert html.escape(label) in page
    finally:
        w.close()


def test_explorer_to_html_reads_as_settings_with_colour_scales() -> None:
    from saliency_widget.widget import explore

    w = explore()
    try:
        w.wait(60)
        page = w.to_html()
        rows = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", page))
        assert rows["method"] == "Gradient" and rows["class"].endswith("(the predicted class)")
        assert "None" not in page and "<th>version</th>" not in page
        assert page.count('class="colorbar"') == 2  # the saliency map's and the projection's scales
    finally:
        w.close()
