"""Method settings in the reports and on the command line: the same settings as the explorer's, one flag each.

A report made with a setting shows the engine's map with that option (computed here by hand)
and lists the setting; the command line offers one ``--<setting>`` per method setting.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from saliency_widget import Explainer
from saliency_widget.cli import main
from saliency_widget.data import load_sample
from saliency_widget.errors import InputError
from saliency_widget.models import shapes_cnn
from saliency_widget.views.settings import MethodSettings, box_bounds, setting_specs
from saliency_widget.viz import render as R
from saliency_widget.viz.bundle import decode
from saliency_widget.viz.interactive_report import interactive_report
from saliency_widget.viz.modelio import describe_model
from saliency_widget.viz.report import render_report
from tests.helpers import REPO_ROOT


def test_method_settings_of_a_dict_names_an_unknown_key() -> None:
    assert MethodSettings.of({"lrp_composite": "epsilon"}) == MethodSettings(lrp_composite="epsilon")
    assert MethodSettings.of(None) == MethodSettings()
    with pytest.raises(InputError, match=r"unknown method setting\(s\) \['lrp_compsite'\]; expected names from .*'lrp_composite'"):
        MethodSettings.of({"lrp_compsite": "epsilon"})


def _lrp_by_hand(**options: object) -> np.ndarray:
    model = shapes_cnn()
    io = describe_model(model)
    x = io.transform(load_sample("shapes_star")).unsqueeze(0)
    ex = Explainer(model, x)
    t = int(ex.probabilities[0].argmax())
    low, high = box_bounds(x, io.mean, io.std)
    return ex.saliency(t, "lrp", low=low, high=high, **options)[0].detach().numpy()  # type: ignore[arg-type]


def _map_png(**options: object) -> str:
    """The report's figure of the LRP map with ``options`` (base64 PNG, as it sits in the page)."""
    want = R.render_map(_lrp_by_hand(**options), sign="absolute", clip_percentile=99.0, cmap="magma")
    assert want.rgb is not None
    return base64.b64encode(R.to_png(R.upscale(want.rgb, 160))).decode("ascii")


def test_the_static_report_uses_and_lists_the_settings() -> None:
    img = load_sample("shapes_star")
    settings = {"lrp_composite": "alpha_beta", "lrp_alpha": 3.0}
    rep = render_report([img], methods=["lrp"], settings=settings)
    assert "<th>LRP settings</th><td>composite alpha_beta, first layer default, ε 1e-06, α 3.0</td>" in rep.html
    default = render_report([img], methods=["lrp"])
    assert "composite epsilon_plus, first layer default, ε 1e-06</td>" in default.html
    # the page's map: the engine's map with the same options, rendered as the report renders it (the same PNG)
    assert _map_png(composite="alpha_beta", alpha=3.0) in rep.html and _map_png() in default.html
    assert _map_png() not in rep.html and rep.png != default.png


def test_the_interactive_report_uses_the_settings() -> None:
    page = interactive_report([load_sample("shapes_star")], shapes_cnn(), names=["star"], methods=["lrp", "gradcam"],
                              layers=["features.relu5"], channels=[0], topk=1,
                              settings={"lrp_composite": "epsilon_gamma_box", "lrp_gamma": 1.0})
    assert page.manifest["settings"]["LRP settings"] == "composite epsilon_gamma_box, first layer default, ε 1e-06, γ 1.0"
    image = page.manifest["images"][0]
    entry = image["maps"]["lrp"][str(image["target"])]
    want = _lrp_by_hand(composite="epsilon_gamma_box", gamma=1.0)
    step = float(np.abs(want.sum(0)).max()) / 32767
    np.testing.assert_allclose(decode(page.payload, entry["sum"]), want.sum(0), rtol=0, atol=step)
    default = _lrp_by_hand()
    assert np.abs(default.sum(0) - want.sum(0)).max() > 100 * step  # the setting changed the map


def test_the_command_line_has_one_flag_per_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = subprocess.run([sys.executable, "-m", "saliency_widget.cli", "render", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert res.returncode == 0
    for spec in setting_specs():
        assert "--" + spec.name.replace("_", "-") in res.stdout
    assert "epsilon_gamma_box" in res.stdout and "method settings" in res.stdout
    out = tmp_path / "lrp.html"
    assert main(["render", "sample:shapes_star", "--methods", "lrp", "--lrp-composite", "alpha_beta", "--lrp-alpha", "3",
                 "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "composite alpha_beta, first layer default, ε 1e-06, α 3.0" in text
    assert _map_png(composite="alpha_beta", alpha=3.0) in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lrp-alpha", "0.5"], "--lrp-alpha must be a weight (alpha, >= 1) in [1, 100], got '0.5'"),
        (["--ig-steps", "many"], "--ig-steps must be a number of steps in 1..512, got 'many'"),
        (["--lrp-epsilon", "0"], "--lrp-epsilon must be a stabiliser in (0, 100], got '0'"),
    ],
)
def test_a_bad_setting_flag_is_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["render", "sample:shapes_star", "--methods", "lrp", "--out", str(tmp_path / "x.html"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.html").exists()


def test_box_bounds_reach_the_engine_through_the_settings() -> None:
    x = torch.zeros(1, 3, 4, 4)
    opts = MethodSettings(lrp_first="zbox").engine_options("lrp", x, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert opts["first"] == "zbox"
    torch.testing.assert_close(opts["low"].flatten(), torch.full((3,), -1.0))
    torch.testing.assert_close(opts["high"].flatten(), torch.full((3,), 1.0))


def test_the_faithfulness_scoreboard_scores_the_maps_shown() -> None:
    """With a setting, the scoreboard's LRP row is the deletion score of the map with that setting."""
    from saliency_widget.analysis.faithfulness import deletion_insertion
    from saliency_widget.viz.report import faithfulness_html

    model = shapes_cnn()
    io = describe_model(model)
    x = io.transform(load_sample("shapes_star")).unsqueeze(0)
    t = int(Explainer(model, x).probabilities[0].argmax())
    opts = MethodSettings(lrp_composite="alpha_beta", lrp_alpha=3.0).engine_options("lrp", x, io.mean, io.std)
    page = faithfulness_html(model, x, t, ["lrp"], "star", steps=4, options={"lrp": opts})
    default = faithfulness_html(model, x, t, ["lrp"], "star", steps=4)
    by_hand = deletion_insertion(model, x, maps={"lrp": torch.as_tensor(_lrp_by_hand(composite="alpha_beta", alpha=3.0))[None]},
                                 target=t, steps=4)
    (_, d, i, _s), = [r for r in by_hand.ranking(0) if r[0] == "lrp"]

    def scores(board: str) -> list[str]:  # the LRP row's deletion and insertion AUCs, as printed
        row = board.split(">lrp</td>", 1)[1].split("</tr>", 1)[0]
        return re.findall(r">(-?\d\.\d{3})</td>", row)[:2]

    assert scores(page) == [f"{d:.3f}", f"{i:.3f}"]
    assert page != default


def test_a_folder_report_uses_and_lists_the_settings(tmp_path: Path) -> None:
    data = tmp_path / "data" / "star"
    data.mkdir(parents=True)
    load_sample("shapes_star").save(data / "star.png")
    out = tmp_path / "report"
    assert main(["render", "--data", str(tmp_path / "data"), "--out", str(out), "--methods", "lrp",
                 "--lrp-composite", "alpha_beta", "--lrp-alpha", "3"]) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    page = (out / "pages" / "star" / "star.png.html").read_text(encoding="utf-8")
    for text in (index, page):
        assert "<th>LRP settings</th><td>composite alpha_beta, first layer default, ε 1e-06, α 3.0</td>" in text
    assert _map_png(composite="alpha_beta", alpha=3.0) in page
