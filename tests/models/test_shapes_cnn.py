"""The bundled shapes CNN: checkpoint, architecture, accuracy, pointing game vs randomised weights, BatchNorm folding, training script."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import saliency_widget
from saliency_widget.analysis.pointing import hits
from saliency_widget.data import CLASSES, MEAN, STD, load_sample, make_batch, render_shape_scene, to_tensor
from saliency_widget.errors import InputError
from saliency_widget.models import SHAPES_WEIGHTS, ShapesCNN, fold_batchnorm, shapes_cnn
from saliency_widget.models.shapes_cnn import CHECKPOINT
from saliency_widget.models.train_shapes import train

# Streams used by training (0) and by the script's own held-out evaluation (10 000) are
# avoided, so these numbers are measured on scenes nobody tuned on.
TEST_SEED = 4242
N_ACCURACY = 300
N_POINTING = 150

# Pointing game: the peak of the channel-summed |map| must fall on the object or within
# TOLERANCE px of it (Chebyshev distance), as the issue asks. Measured on the shipped
# checkpoint with these 150 scenes (1 px; 3 px in brackets):
#   trained     gradient 0.77 (0.92), deconvnet 1.00 (1.00), guided_backprop 1.00 (1.00)
#   randomised  gradient 0.51 (0.61), deconvnet 0.59 (0.65), guided_backprop 0.57 (0.61)
# (on 500 other scenes, seed 777: gradient 0.82, deconvnet 1.00, guided 1.00). The earlier
# 7x7 stride-2 first layer reached only 0.66 / 0.85 / 0.55 at 1 px: its footprint put the
# brightest pixel 2-3 px outside the outline (see the ShapesCNN docstring).
TOLERANCE = 1
POINTING_MIN = {"deconvnet": 0.90, "guided_backprop": 0.90, "gradient": 0.75}
# trained score must beat the randomised-weights score by this much
RANDOM_MARGIN = {"deconvnet": 0.30, "guided_backprop": 0.30, "gradient": 0.20}

# Two-object scenes, DeconvNet, target = one object's class: how often the peak lands on
# that object vs on the other one (measured on these 100 scenes: on target 0.88 / 0.79,
# on the other object 0.12 / 0.19, for target = first / second object).
N_TWO = 100
TWO_ON_TARGET_MIN = 0.70
TWO_ON_OTHER_MAX = 0.30


@pytest.fixture(scope="module")
def model() -> ShapesCNN:
    return shapes_cnn()


@pytest.fixture(scope="module")
def heldout() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``N_ACCURACY`` fresh single-object scenes: inputs (N, 3, 128, 128), labels (N,), masks (N, 128, 128)."""
    batch = make_batch(N_ACCURACY, size=128, seed=TEST_SEED)
    return to_tensor(batch.images), torch.from_numpy(batch.labels[:, 0]), batch.masks[:, 0]


def pointing_game(maps: torch.Tensor, masks: np.ndarray, tolerance: int = TOLERANCE) -> float:
    """Fraction of maps whose channel-summed |map| peaks within ``tolerance`` px (Chebyshev) of the object.

    Uses the package's own scoring (``saliency_widget.analysis.pointing.hits``), tested on synthetic
    maps in tests/analysis/test_pointing_game.py.
    """
    energy = maps.detach().abs().sum(dim=1)
    return float(hits(energy, torch.from_numpy(masks), tolerance, "chebyshev").float().mean())


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy with every parameter re-drawn from its default initialisation."""
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone


# ----------------------------------------------------------------------------- checkpoint


def test_checkpoint_is_a_small_fp32_state_dict() -> None:
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and all(v.dtype == torch.float32 for v in state.values())
    assert 50_000 < CHECKPOINT.stat().st_size < 1_000_000
    assert set(state) == set(ShapesCNN().state_dict())


def test_model_is_plain_conv_relu_maxpool_in_eval_mode(model: ShapesCNN) -> None:
    assert not model.training
    kinds = {type(m) for m in model.modules()}
    assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)
    assert kinds <= {
        ShapesCNN,
        nn.Sequential,
        nn.Conv2d,
        nn.ReLU,
        nn.MaxPool2d,
        nn.AdaptiveMaxPool2d,
        nn.Flatten,
        nn.Linear,
    }
    names = dict(model.named_modules())
    for name in (
        "features.conv1",
        "features.relu1",
        "features.pool1",
        "features.pool2",
        "features.conv5",
        "classifier.fc1",
        "classifier.fc2",
    ):
        assert name in names
    assert model.saliency_weights is SHAPES_WEIGHTS


def test_weights_metadata_and_transforms() -> None:
    meta = SHAPES_WEIGHTS.meta
    assert meta["categories"] == list(CLASSES)
    assert meta["mean"] == MEAN and meta["std"] == STD and meta["input_size"] == (128, 128)
    assert meta["accuracy"] is not None and meta["accuracy"] >= 0.95
    preprocess = SHAPES_WEIGHTS.transforms()
    img = load_sample("shapes_star")
    x = preprocess(img)
    assert x.shape == (3, 128, 128) and x.dtype == torch.float32
    torch.testing.assert_close(x, to_tensor(np.asarray(img)))  # identity resize for 128 px scenes
    torch.testing.assert_close(preprocess(np.asarray(img)), x)
    torch.testing.assert_close(SHAPES_WEIGHTS.denormalize(x), torch.from_numpy(np.array(img)).permute(2, 0, 1) / 255.0)
    assert preprocess(load_sample("cat")).shape == (3, 128, 128)  # non-square photo: resize + centre crop
    with pytest.raises(InputError, match="uint8"):
        preprocess(np.zeros((8, 8, 3), dtype=np.float32))


def test_shipped_shape_samples_are_classified(model: ShapesCNN) -> None:
    preprocess = SHAPES_WEIGHTS.transforms()
    x = torch.stack([preprocess(load_sample("shapes_star"))])
    assert CLASSES[int(model(x).argmax())] == "star"


# ----------------------------------------------------------------------------- accuracy & saliency


def test_heldout_accuracy(model: ShapesCNN, heldout: tuple[torch.Tensor, torch.Tensor, np.ndarray]) -> None:
    x, y, _ = heldout
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.95


@pytest.mark.parametrize("method", sorted(POINTING_MIN))
def test_pointing_game_trained_vs_randomized(
    model: ShapesCNN, heldout: tuple[torch.Tensor, torch.Tensor, np.ndarray], method: str
) -> None:
    x, y, masks = heldout
    x, y, masks = x[:N_POINTING], y[:N_POINTING], masks[:N_POINTING]
    trained = pointing_game(saliency_widget.saliency(model, x, target=y, method=method), masks)
    rand = pointing_game(saliency_widget.saliency(randomized(model), x, target=y, method=method), masks)
    assert trained >= POINTING_MIN[method], (trained, rand)
    assert trained - rand >= RANDOM_MARGIN[method], (trained, rand)


@pytest.mark.parametrize("target_object", [0, 1])
def test_map_follows_the_chosen_object_in_two_object_scenes(model: ShapesCNN, target_object: int) -> None:
    """Picking either class of a two-object scene moves the DeconvNet peak onto that object."""
    batch = make_batch(N_TWO, size=128, seed=TEST_SEED + 1, n_objects=2)
    x = to_tensor(batch.images)
    target = torch.from_numpy(batch.labels[:, target_object])
    maps = saliency_widget.saliency(model, x, target=target, method="deconvnet")
    on_target = pointing_game(maps, batch.masks[:, target_object])
    on_other = pointing_game(maps, batch.masks[:, 1 - target_object])
    assert on_target >= TWO_ON_TARGET_MIN and on_other <= TWO_ON_OTHER_MAX, (on_target, on_other)


@pytest.mark.parametrize("name", ["shapes_cross_ring", "shapes_star_square"])
def test_two_object_samples_rank_both_shapes_and_maps_move(model: ShapesCNN, name: str) -> None:
    """The shipped two-object samples demo "pick the other class": both shapes are the top two
    classes and each class's DeconvNet / Guided Backprop map peaks on its own object."""
    scene = render_shape_scene(name)
    x = SHAPES_WEIGHTS.transforms()(load_sample(name))[None]
    with torch.no_grad():
        top2 = set(model(x).topk(2, dim=1).indices[0].tolist())
    assert top2 == set(scene.labels)
    for j, label in enumerate(scene.labels):
        for method in ("deconvnet", "guided_backprop"):
            maps = saliency_widget.saliency(model, x, target=[label], method=method)
            assert pointing_game(maps, scene.masks[j : j + 1]) == 1.0, (CLASSES[label], method)


# ----------------------------------------------------------------------------- BatchNorm folding & training


def test_fold_batchnorm_preserves_the_function() -> None:
    torch.manual_seed(0)
    bn_model = ShapesCNN(batchnorm=True).eval()
    for m in bn_model.modules():  # non-trivial statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(bn_model)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), bn_model(x), rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())


def test_training_script_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tiny.pt"
    record = train(
        out=out, epochs=1, n_train=48, n_test=24, size=64, batch_size=16, two_object_fraction=0.25, verbose=False
    )
    state = torch.load(out, map_location="cpu", weights_only=True)
    net = ShapesCNN()
    net.load_state_dict(state)
    assert json.loads(out.with_suffix(".json").read_text()) == record
    assert 0.0 <= record["heldout_accuracy"] <= 1.0 and record["num_params"] == sum(p.numel() for p in net.parameters())
    with pytest.raises(InputError, match="test_seed"):
        train(out=out, seed=3, test_seed=3)


def test_shapes_cnn_rejects_bad_argument() -> None:
    with pytest.raises(InputError, match="pretrained"):
        shapes_cnn(pretrained="yes")  # type: ignore[arg-type]
    assert not shapes_cnn(pretrained=False).training
