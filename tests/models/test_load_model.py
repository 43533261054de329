"""models.load_model: the one reader of model specs (shapes, torchvision, timm, hf, py), offline, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from saliency_widget.cli import main
from saliency_widget.errors import InputError, ModelError, SaliencyError
from saliency_widget.models import MODEL_SPECS, ShapesCNN, load_model
from saliency_widget.models.torchvision_models import weights_cache_path
from tests.nets import small_cnn


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], msg=name)


def not_a_module() -> str:
    """A factory that returns no model (used as py:tests.models.test_load_model:not_a_module)."""
    return "nope"


@pytest.fixture()
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the torch hub cache at an empty folder for the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.parametrize("spec", [None, "shapes", " shapes "])
def test_default_and_shapes_give_the_bundled_pretrained_model(spec: str | None) -> None:
    model = load_model(spec)
    assert isinstance(model, ShapesCNN) and not model.training
    _same_weights(model, load_model("shapes"))


def test_a_module_is_returned_as_given() -> None:
    net = small_cnn().train()
    assert load_model(net) is net and net.training  # never changed, not even put in eval mode


def test_torchvision_none_is_random_and_offline(empty_hub: Path) -> None:
    model = load_model("torchvision:squeezenet1_1:none")
    assert isinstance(model, torchvision.models.SqueezeNet) and not model.training
    assert not empty_hub.exists()  # nothing was downloaded or cached


def test_torchvision_reads_the_hub_cache(empty_hub: Path) -> None:
    weights = torchvision.models.SqueezeNet1_1_Weights.DEFAULT
    torch.manual_seed(3)
    reference = torchvision.models.squeezenet1_1(weights=None)
    empty_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), weights_cache_path(weights))
    model = load_model("torchvision:squeezenet1_1")
    assert model.saliency_weights is weights  # type: ignore[comparison-overlap]
    _same_weights(model, reference)
    _same_weights(load_model("torchvision:squeezenet1_1:IMAGENET1K_V1"), reference)


def test_torchvision_uncached_weights_say_how_to_go_on(empty_hub: Path) -> None:
    with pytest.raises(InputError) as info:
        load_model("torchvision:squeezenet1_1")
    msg = str(info.value)
    assert "'torchvision:squeezenet1_1'" in msg and "torch hub cache" in msg and "torchvision:squeezenet1_1:none" in msg
    assert "\n" not in msg


def test_timm_none_is_random() -> None:
    timm = pytest.importorskip("timm")
    model = load_model("timm:convnext_atto:none")
    assert isinstance(model, timm.models.ConvNeXt) and not model.training


def test_timm_reads_the_hugging_face_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timm = pytest.importorskip("timm")
    import huggingface_hub
    from safetensors.torch import save_file

    torch.manual_seed(4)
    reference = timm.create_model("convnext_atto", pretrained=False)
    cached = tmp_path / "model.safetensors"
    save_file(reference.state_dict(), str(cached))
    asked: list[tuple[str, str]] = []

    def lookup(repo: str, filename: str, **kw: object) -> str | None:
        asked.append((repo, filename))
        return str(cached) if filename == "model.safetensors" else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lookup)
    model = load_model("timm:convnext_atto")
    assert asked[0][0] == "timm/convnext_atto.d2_in1k"
    _same_weights(model, reference)


def test_timm_uncached_weights_are_refused_without_download(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("timm")
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    with pytest.raises(InputError, match=r"'timm:convnext_atto'.*not in the Hugging Face cache.*timm:convnext_atto:none"):
        load_model("timm:convnext_atto")


def test_hf_reads_a_local_folder(tmp_path: Path) -> None:
    tr = pytest.importorskip("transformers")
    torch.manual_seed(5)
    cfg = tr.ConvNextConfig(hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], num_labels=3)
    reference = tr.ConvNextForImageClassification(cfg).eval()
    reference.save_pretrained(tmp_path / "tiny")
    model = load_model(f"hf:{tmp_path / 'tiny'}")
    assert type(model) is type(reference) and not model.training
    _same_weights(model, reference)


def test_py_factory() -> None:
    model = load_model("py:tests.nets:small_cnn")
    _same_weights(model, small_cnn())


@pytest.mark.parametrize(
    ("spec", "error", "fragment"),
    [
        ("resnet18", ModelError, r"'resnet18' is not valid.*not a model spec"),
        ("onnx:model.onnx", ModelError, r"'onnx:model.onnx'.*not a model spec"),
        ("torchvision:", InputError, r"'torchvision:' names no model"),
        ("torchvision:resnet9000", InputError, r"'torchvision:resnet9000'.*not a torchvision classification model"),
        ("torchvision:squeezenet1_1:IMAGENET9K", InputError, r"IMAGENET9K.*IMAGENET1K_V1"),
        ("timm:no_such_net", InputError, r"'timm:no_such_net'.*not a timm model"),
        ("timm:convnext_atto:IMAGENET", InputError, r"only ':none'"),
        ("hf:", InputError, r"'hf:' names no model"),
        ("hf:/no/such/folder", InputError, r"'hf:/no/such/folder'.*no image classifier"),
        ("py:tests.nets", InputError, r"must be py:module:factory"),
        ("py:no_such_module_xyz:build", InputError, r"'py:no_such_module_xyz:build'.*No module named"),
        ("py:tests.nets:no_such_factory", InputError, r"no_such_factory"),
        ("py:tests.models.test_load_model:not_a_module", InputError, r"returned a str, expected a torch.nn.Module"),
    ],
)
def test_bad_specs_are_one_line_errors_naming_the_spec(spec: str, error: type[SaliencyError], fragment: str) -> None:
    with pytest.raises(error, match=fragment) as info:
        load_model(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec", ["resnet18", "onnx:x"])
def test_an_unknown_form_lists_every_valid_form(spec: str) -> None:
    with pytest.raises(ModelError) as info:
        load_model(spec)
    assert all(form in str(info.value) for form in MODEL_SPECS)


def test_an_object_that_is_no_module_nor_spec() -> None:
    with pytest.raises(ModelError, match=r"expected a torch.nn.Module or a model spec, got dict"):
        load_model({"weight": torch.zeros(1)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "sample:shapes_star", "--model", "resnet18"],
        ["render", "--data", "DATA", "--model", "resnet18"],
        ["mine", "--data", "sample:shapes", "--layers", "features.relu1", "--model", "resnet18"],
    ],
    ids=["render", "render-data", "mine"],
)
def test_every_command_reads_model_through_load_model(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    argv = [str(tmp_path / "data") if a == "DATA" else a for a in argv]
    out = ["--out", str(tmp_path / ("r.html" if argv[0] == "render" and "--data" not in argv else "out"))]
    assert main([*argv, *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model 'resnet18' is not valid" in err[0] and "py:module:factory" in err[0]


def test_cli_render_takes_a_py_factory(tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    assert main(["render", "sample:shapes_star", "--model", "py:saliency_widget.models:shapes_cnn", "--methods", "gradient", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
