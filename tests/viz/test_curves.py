"""Faithfulness curves as inline SVG and the result tables as HTML: valid XML, no script, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from saliency_widget.viz.curves import curves_svg, faithfulness_svgs
from saliency_widget.viz.report import render_report
from saliency_widget.viz.tables import markdown_table_html, markdown_tables_html, scoreboard_html
from tests.helpers import LABELS, rgb_image, to_tensor
from tests.nets import small_cnn

SVG = "{http://www.w3.org/2000/svg}"
FR = [0.0, 0.5, 1.0]
EVIL = '<script>alert("x")</script>&"'


def _no_active_content(root: ET.Element) -> None:
    for el in root.iter():
        assert el.tag.split("}")[-1] not in ("script", "foreignObject", "a", "image", "use")
        assert not any(k.lower().startswith("on") or k.endswith("href") for k in el.attrib), el.attrib


def test_curves_svg_is_valid_xml_with_one_polyline_per_curve() -> None:
    svg = curves_svg(FR, {"gradient": [0.9, 0.4, 0.1], "random": [0.9, 0.7, 0.1]}, "deletion")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.find(f"{SVG}title").text == "deletion"
    lines = root.findall(f"{SVG}polyline")
    assert [ln.find(f"{SVG}title").text for ln in lines] == ["gradient", "random"]
    assert lines[1].get("stroke-dasharray") == "4 3" and lines[0].get("stroke-dasharray") is None
    _no_active_content(root)


def test_curve_points_map_to_the_plot_box() -> None:
    # plot box: left 34, top 22, height 190 - 22 - 30 = 138; width 300 - 34 - 8 - legend (7 * 1 + 20 -> 40) = 218
    root = ET.fromstring(curves_svg(FR, {"g": [1.0, 0.5, 0.0]}, "t"))
    pts = root.find(f"{SVG}polyline").get("points")
    assert pts == "34.0,22.0 143.0,91.0 252.0,160.0"


def test_names_and_titles_are_escaped() -> None:
    svg = faithfulness_svgs(FR, {EVIL: [1, 0, 0]}, {EVIL: [0, 1, 1]})
    assert "<script>" not in svg
    for part in svg.split("</svg>")[:-1]:
        root = ET.fromstring(part[part.index("<svg"):] + "</svg>")
        _no_active_content(root)
        assert EVIL in [t.text for t in root.iter(f"{SVG}title")]


def test_scoreboard_keeps_the_given_order_and_names_the_direction() -> None:
    rows = [("gradcam", 0.1, 0.9, 0.8), ("random", 0.3, 0.8, 0.5), (EVIL, 0.4, 0.5, 0.1)]
    out = scoreboard_html(rows, failed={"occlusion": "too slow"}, pending=["smoothgrad"])
    root = ET.fromstring(out)
    body = root.find("tbody")
    cells = [[("".join(td.itertext())) for td in tr] for tr in body]
    assert cells == [
        ["gradcam", "0.100", "0.900", "+0.800"],
        ["random order (reference)", "0.300", "0.800", "+0.500"],
        [EVIL, "0.400", "0.500", "+0.100"],
        ["smoothgrad", "computing …"],
        ["occlusion", "n/a: too slow"],
    ]
    head = "".join(root.find("thead").itertext())
    assert "deletion AUClower is better" in head and "insertion AUChigher is better" in head


@pytest.mark.parametrize(
    ("md", "expected_cells"),
    [
        ("| a | b |\n|---|---:|\n| x | 1.0 |", [["a", "b"], ["x", "1.0"]]),
        ("| m | v |\n|---|---|\n| *random* | 2 |\n| <b> | 3 |", [["m", "v"], ["random", "2"], ["<b>", "3"]]),
    ],
)
def test_markdown_tables_become_html_tables(md: str, expected_cells: list[list[str]]) -> None:
    root = ET.fromstring(markdown_table_html(md))
    assert [["".join(c.itertext()) for c in tr] for tr in root.iter("tr")] == expected_cells
    assert "|" not in markdown_table_html(md)


def test_right_aligned_columns_and_text_around_tables() -> None:
    out = markdown_tables_html("title line\n| a | b |\n|---|---:|\n| x | 1 |\nafter")
    assert out.startswith("<p") and out.endswith("after</p>") and out.count("<table") == 1
    assert "text-align:right\">1</td>" in out


def test_static_report_has_the_scoreboard_and_svg_curves_per_image() -> None:
    rep = render_report([rgb_image(1), rgb_image(2)], small_cnn(), ["gradient", "deconvnet"], labels=LABELS,
                        transform=to_tensor, faithfulness=True)
    assert rep.html.count('class="sw-scoreboard"') == 2 and rep.html.count("<svg") == 4
    assert "<script" not in rep.html and "lower is better" in rep.html
    plain = render_report([rgb_image(1)], small_cnn(), ["gradient"], labels=LABELS, transform=to_tensor)
    assert "sw-scoreboard" not in plain.html


def test_cli_faithfulness_flag(tmp_path: object) -> None:
    from pathlib import Path

    from saliency_widget.cli import main

    out = Path(str(tmp_path)) / "r.html"
    assert main(["render", "sample:shapes_star", "--methods", "gradient", "--faithfulness", "--out", str(out)]) == 0
    page = out.read_text()
    assert 'class="sw-scoreboard"' in page and page.count("<svg") == 2
