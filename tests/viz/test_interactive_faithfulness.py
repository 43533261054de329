"""An interactive report with ``faithfulness=True`` carries each image's scoreboard and curves below the viewer."""

from __future__ import annotations

import base64
import hashlib
import re

from saliency_widget.viz.report import render_report
from tests.helpers import LABELS, rgb_image, to_tensor
from tests.nets import small_cnn


def _sha(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_interactive_report_has_the_scoreboards_and_a_csp_allowing_exactly_their_styles() -> None:
    rep = render_report([rgb_image(0), rgb_image(1)], small_cnn(), ["gradient", "deconvnet"], labels=LABELS, transform=to_tensor,
                        names=["first", "second"], interactive=True, topk=1, faithfulness=True)
    extra = rep.html.split("<section class='sw-section sw-extra'>", 1)[1].split("</section>", 1)[0]
    assert extra.count('class="sw-scoreboard"') == 2  # one per image
    assert extra.count("<h3>") == 2 and "<h3>first</h3>" in extra and "<h3>second</h3>" in extra
    assert extra.count("<svg") == 4  # deletion and insertion curves per image
    assert "<script" not in extra
    csp = re.search(r"Content-Security-Policy' content=\"([^\"]+)\"", rep.html)
    assert csp is not None
    style_src = next(d for d in csp.group(1).split(";") if d.strip().startswith("style-src")).split()
    styles = sorted(set(re.findall(r'style="([^"]*)"', extra)))
    assert styles and "'unsafe-hashes'" in style_src and "'unsafe-inline'" not in style_src
    assert {f"'{_sha(s)}'" for s in styles} <= set(style_src)
    assert len(style_src) == 1 + 1 + 1 + len(styles)  # the directive, the stylesheet's hash, 'unsafe-hashes', one per style


def test_interactive_report_without_faithfulness_keeps_the_strict_style_src() -> None:
    rep = render_report([rgb_image(0)], small_cnn(), ["gradient"], labels=LABELS, transform=to_tensor, interactive=True, topk=1)
    assert "<section class='sw-section sw-extra'>" not in rep.html and "unsafe-hashes" not in rep.html
