"""Layer layouts: NCHW, NHWC (channels last), tokens, flat, ambiguous; views and seeds through them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.layouts import (
    Layout,
    LayoutTracker,
    from_nchw,
    nchw_shape,
    to_nchw,
)
from saliency_widget.errors import LayerError
from tests.engine.model_zoo import hf_model, timm_model, timm_vit_with_registers, torchvision_model

# ----------------------------------------------------------------------------- views


def test_tokens_view_drops_the_prefix_and_reads_the_grid_row_major() -> None:
    # (N=1, P=2 + 2x3 tokens, C=2): token t has values (10 t, 10 t + 1)
    t = torch.tensor([[[10.0 * i, 10.0 * i + 1] for i in range(8)]])
    v = to_nchw(t, Layout("tokens", (2, 3), 2))
    expected = torch.tensor([[[[20.0, 30.0, 40.0], [50.0, 60.0, 70.0]], [[21.0, 31.0, 41.0], [51.0, 61.0, 71.0]]]])
    torch.testing.assert_close(v, expected)


def test_nhwc_view_moves_the_last_axis_to_channels() -> None:
    t = torch.arange(12.0).view(1, 2, 3, 2)  # (N, H, W, C)
    v = to_nchw(t, Layout("NHWC", (2, 3)))
    torch.testing.assert_close(v[0, 1], torch.tensor([[1.0, 3.0, 5.0], [7.0, 9.0, 11.0]]))
    assert v.shape == (1, 2, 2, 3)


@pytest.mark.parametrize(
    ("layout", "raw"),
    [
        (Layout("NCHW", (2, 3)), (2, 4, 2, 3)),
        (Layout("NHWC", (2, 3)), (2, 2, 3, 4)),
        (Layout("tokens", (2, 3), 0), (2, 6, 4)),
        (Layout("tokens", (2, 3), 5), (2, 11, 4)),
    ],
)
def test_from_nchw_inverts_to_nchw_with_zero_prefix_tokens(layout: Layout, raw: tuple[int, ...]) -> None:
    t = torch.randn(raw)
    back = from_nchw(to_nchw(t, layout), layout)
    expected = t.clone()
    if layout.kind == "tokens":
        expected[:, : layout.prefix] = 0
    torch.testing.assert_close(back, expected, rtol=0, atol=0)
    assert nchw_shape(raw, layout) == (4, 2, 3)


@pytest.mark.parametrize(
    ("layout", "raw"),
    [(Layout("ambiguous"), (1, 4, 4, 4)), (Layout("flat"), (1, 4)), (Layout("NHWC", (3, 3)), (1, 2, 3, 4))],
)
def test_to_nchw_refuses_a_tensor_that_does_not_have_the_layout(layout: Layout, raw: tuple[int, ...]) -> None:
    with pytest.raises(LayerError, match="layout"):
        to_nchw(torch.zeros(raw), layout)


# ----------------------------------------------------------------------------- the tracker on small modules


class ChannelsLast(nn.Module):
    """Conv, then a channels-last MLP with a residual, then back: a ConvNeXt block in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 6)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(6, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).permute(0, 2, 3, 1)
        y = y + self.fc2(self.act(self.fc(self.norm(y))))
        return self.head(y.permute(0, 3, 1, 2).mean((2, 3)))


class TinyViT(nn.Module):
    """Patch embedding, class + register tokens, one mixing layer, class-token head."""

    def __init__(self, registers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.reg = nn.Parameter(torch.randn(1, registers, 8))
        self.norm = nn.LayerNorm(8)
        self.mix = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        n = t.shape[0]
        t = torch.cat([self.cls.expand(n, -1, -1), self.reg.expand(n, -1, -1), t], dim=1)
        t = self.norm(t)
        a = torch.softmax(t @ t.transpose(1, 2), dim=-1)
        t = t + self.mix(a @ t)
        return self.head(t[:, 0])


class Square(nn.Module):
    """A (N, 4, 4, 4) output that is NCHW and NHWC at once by shape; only the tracker knows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.last = nn.Identity()
        self.roundtrip = nn.Identity()
        self.opaque = nn.Identity()
        self.bias = nn.Parameter(torch.zeros(1, 4, 4, 4))
        self.const = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.last(self.conv(x).permute(0, 2, 3, 1))  # NHWC, 4 x 4 x 4
        r = self.roundtrip(y.reshape(1, 2, 32).reshape(1, 4, 4, 4))  # rows split and merged back: followed
        z = self.opaque(y.transpose(1, 2))  # (N, W, H, C): a square grid, but transposed
        return (y + r + z + self.const(self.bias)).flatten(1)[:, :3]


def _layouts(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[str, tuple[int, ...], int]]:
    return {i.key: (i.layout, i.shape, i.prefix_tokens) for i in sw.layers(model, x)}


def test_channels_last_block_is_followed_through_norm_linear_and_residual() -> None:
    got = _layouts(ChannelsLast().eval(), torch.rand(2, 3, 5, 7))
    assert got == {
        "conv": ("NCHW", (4, 5, 7), 0),
        "norm": ("NHWC", (4, 5, 7), 0),
        "fc": ("NHWC", (6, 5, 7), 0),
        "act": ("NHWC", (6, 5, 7), 0),
        "fc2": ("NHWC", (4, 5, 7), 0),
        "head": ("flat", (3,), 0),
    }


def test_class_and_register_tokens_are_prefix_tokens() -> None:
    got = _layouts(TinyViT(registers=2).eval(), torch.rand(2, 3, 8, 12))
    assert got == {
        "embed": ("NCHW", (8, 2, 3), 0),
        "norm": ("tokens", (8, 2, 3), 3),
        "mix": ("tokens", (8, 2, 3), 3),
        "head": ("flat", (3,), 0),
    }


def test_square_outputs_are_decided_by_evidence_not_shape() -> None:
    infos = {i.key: i for i in sw.layers(Square().eval(), torch.rand(1, 3, 4, 4))}
    assert infos["last"].layout == "NHWC"  # followed through the permute
    assert infos["roundtrip"].layout == "NHWC"  # the reshapes regroup the same factors
    assert infos["opaque"].layout == "ambiguous"  # its shape fits NCHW and NHWC 4 x 4 grids; its axes do not
    assert infos["const"].layout == "ambiguous"  # not computed from the input at all
    assert infos["opaque"].shape == infos["opaque"].raw_shape == (4, 4, 4)


def test_tracker_leaves_no_mode_behind() -> None:
    depth = torch._C._len_torch_function_stack()
    with pytest.raises(RuntimeError, match="boom"), LayoutTracker() as tr:
        tr.watch(torch.zeros(1, 1, 2, 2))
        raise RuntimeError("boom")
    assert torch._C._len_torch_function_stack() == depth


# ----------------------------------------------------------------------------- real model families


@dataclass(frozen=True)
class Case:
    """One model family: a builder, its input size, and one layer checked by hand.

    ``layer`` is a module name, or else the suffix of one (Hugging Face renamed
    ``vit.encoder.layer.1`` to ``vit.layers.1`` across versions).
    """

    build: Callable[[], nn.Module]
    size: int
    layer: str
    layout: str
    shape: tuple[int, int, int]
    prefix: int = 0
    # which layouts the whole model may have, and the ambiguous layers allowed (by name suffix)
    allowed: tuple[str, ...] = ("NCHW", "flat")
    ambiguous: tuple[str, ...] = ()


def _tv(name: str, **kw: Any) -> Callable[[], nn.Module]:
    return lambda: torchvision_model(name, **kw)


def _timm(name: str, **kw: Any) -> Callable[[], nn.Module]:
    return lambda: timm_model(name, **kw)


def _hf(kind: str) -> Callable[[], nn.Module]:
    return lambda: hf_model(kind)


CASES = {
    "tv-swin_t": Case(_tv("swin_t"), 64, "norm", "NHWC", (768, 2, 2), allowed=("NCHW", "NHWC", "flat")),
    "tv-convnext_tiny": Case(_tv("convnext_tiny"), 64, "features.1.0.block.2", "NHWC", (96, 16, 16), allowed=("NCHW", "NHWC", "flat")),
    "tv-vit_b_16": Case(_tv("vit_b_16", image_size=64), 64, "encoder.layers.encoder_layer_11.ln_1", "tokens", (768, 4, 4), 1, allowed=("NCHW", "tokens", "flat")),
    "tv-efficientnet_b0": Case(_tv("efficientnet_b0"), 64, "features.8.2", "NCHW", (1280, 2, 2)),
    "tv-mobilenet_v3_small": Case(_tv("mobilenet_v3_small"), 64, "features.12.2", "NCHW", (576, 2, 2)),
    "timm-deit_tiny": Case(
        _timm("deit_tiny_patch16_224", img_size=64), 64, "blocks.11.norm1", "tokens", (192, 4, 4), 1,
        allowed=("NCHW", "tokens", "flat", "ambiguous"), ambiguous=("attn.q_norm", "attn.k_norm"),
    ),
    "timm-vit-registers": Case(
        timm_vit_with_registers, 64, "blocks.1.norm1", "tokens", (48, 4, 4), 5,
        allowed=("NCHW", "tokens", "flat", "ambiguous"), ambiguous=("attn.q_norm", "attn.k_norm"),
    ),
    "timm-convnext_atto": Case(_timm("convnext_atto"), 64, "stages.3.blocks.1.norm", "NCHW", (320, 2, 2)),
    "hf-vit": Case(_hf("vit"), 64, "1.layernorm_before", "tokens", (48, 4, 4), 1, allowed=("NCHW", "tokens", "flat")),
    "hf-convnext": Case(_hf("convnext"), 64, "convnext.encoder.stages.3.layers.0.pwconv1", "NHWC", (256, 2, 2), allowed=("NCHW", "NHWC", "flat")),
    "hf-swin": Case(
        _hf("swin"), 64, "swin.layernorm", "tokens", (64, 4, 4), 0,
        allowed=("NCHW", "tokens", "flat", "ambiguous"),
        # window batches (N * windows, ...) and the attention bias are not layers of the image grid; the
        # pooled (N, 64 channels, 1) is no grid either (it was once read as 64 tokens of an 8 x 8 grid by its shape)
        ambiguous=(
            "attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj", "blocks.0.dropout",
            "relative_position_bias", "swin.pooler",
        ),
    ),
}


def _raw_output(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's output as the module returns it, captured with a plain forward hook (not the engine)."""
    seen: list[torch.Tensor] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]


def _by_hand(raw: torch.Tensor, case: Case) -> torch.Tensor:
    """(N, C, H, W) from the raw output, with the case's literal layout, prefix and grid."""
    c, h, w = case.shape
    if case.layout == "NCHW":
        return raw
    if case.layout == "NHWC":
        return raw.permute(0, 3, 1, 2)
    return raw[:, case.prefix :].reshape(raw.shape[0], h, w, c).permute(0, 3, 1, 2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_layers_report_layout_and_chw_shape_checked_by_hand(name: str) -> None:
    case = CASES[name]
    model = case.build()
    x = torch.rand(1, 3, case.size, case.size, generator=torch.Generator().manual_seed(1))
    ex = sw.Explainer(model, x, intercept=False)
    infos = {i.key: i for i in ex.layers}
    names = [n for n, _ in model.named_modules()]
    (layer,) = [case.layer] if case.layer in names else [n for n in names if n.endswith("." + case.layer)]
    info = infos[layer]
    assert (info.layout, info.shape, info.prefix_tokens) == (case.layout, case.shape, case.prefix)
    raw = _raw_output(model, x, layer)
    assert info.raw_shape == tuple(raw.shape[1:])
    torch.testing.assert_close(ex.activation(layer), _by_hand(raw, case), rtol=1e-5, atol=1e-5)
    assert set(Counter(i.layout for i in infos.values())) <= set(case.allowed)
    bad = [k for k, i in infos.items() if i.layout == "ambiguous" and not k.endswith(case.ambiguous or ("\0",))]
    assert bad == []


def test_one_shot_layers_agree_with_the_explainer() -> None:
    model = TinyViT().eval()
    x = torch.rand(1, 3, 8, 8)
    assert sw.layers(model, x) == sw.Explainer(model, x).layers


# ----------------------------------------------------------------------------- seeds through the layout


def _hand_projection(model: nn.Module, x: torch.Tensor, layer: str, index: tuple[Any, ...]) -> torch.Tensor:
    """Gradient of the chosen raw activation times its value, seeded by hand in the raw layout."""
    xx = x.clone().requires_grad_(True)
    seen: list[torch.Tensor] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, a, out: seen.append(out))
    try:
        model(xx)
    finally:
        handle.remove()
    raw = seen[0]
    seed = torch.zeros_like(raw)
    seed[index] = raw[index].detach()
    (g,) = torch.autograd.grad(raw, xx, seed)
    return g


@pytest.mark.parametrize(
    ("model", "layer", "channel", "yx", "raw_index"),
    [
        # NHWC: unit (c=5, y=1, x=2) is raw[:, 1, 2, 5]
        (ChannelsLast, "fc", 5, (1, 2), (slice(None), 1, 2, 5)),
        # tokens with P=3 on a 2 x 3 grid: unit (c=6, y=1, x=0) is token 3 + 1*3 + 0 = 6
        (TinyViT, "norm", 6, (1, 0), (slice(None), 6, 6)),
    ],
)
def test_projection_seed_lands_on_the_raw_unit(model: type, layer: str, channel: int, yx: tuple[int, int], raw_index: tuple[Any, ...]) -> None:
    torch.manual_seed(0)
    net = model().eval()
    x = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(2))
    ex = sw.Explainer(net, x, intercept=False)
    got = ex.project(layer, channel=channel, position=yx, method="gradient")
    torch.testing.assert_close(got, _hand_projection(net, x, layer, raw_index))


def test_strongest_reads_the_channels_last_grid() -> None:
    torch.manual_seed(0)
    net = ChannelsLast().eval()
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(4))
    raw = _raw_output(net, x, "fc")[..., 3]  # (N, H, W) of channel 3
    flat = raw.reshape(2, -1).argmax(1)
    expected = [(int(i) // 7, int(i) % 7) for i in flat]
    assert sw.Explainer(net, x, intercept=False).strongest("fc", 3) == expected


def test_ambiguous_layers_are_refused_for_projection() -> None:
    ex = sw.Explainer(Square().eval(), torch.rand(1, 3, 4, 4), intercept=False)
    with pytest.raises(LayerError, match=r"'opaque' outputs shape \(1, 4, 4, 4\) whose channel and spatial axes are ambiguous"):
        ex.project("opaque", channel=0, method="gradient")
    with pytest.raises(LayerError, match="ambiguous"):
        ex.strongest("opaque", 0)


@pytest.mark.parametrize(("model", "layer", "channel", "yx"), [(ChannelsLast, "fc", 5, (1, 2)), (TinyViT, "norm", 6, (1, 0))])
def test_one_shot_projection_agrees_with_the_explainer(model: type, layer: str, channel: int, yx: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = model().eval()
    x = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(2))
    ref = sw.Explainer(net, x, intercept=False).project(layer, channel=channel, position=yx, method="gradient")
    torch.testing.assert_close(sw.project(net, x, layer, channel, position=yx, method="gradient"), ref)


def test_receptive_field_of_a_channels_last_unit() -> None:
    # fc sees one position of the 3x3, padding-1 conv: unit (y=1, x=2) sees rows 0..2, columns 1..3
    ex = sw.Explainer(ChannelsLast().eval(), torch.rand(1, 3, 5, 7), intercept=False)
    assert ex.receptive_field("fc", 1, 2) == (0, 1, 3, 4)
    assert ex.receptive_field("fc", 4, 6) == (3, 5, 5, 7)


def test_occlusion_of_a_channels_last_activation_reads_its_channel() -> None:
    from saliency_widget.engine.occlusion import occlusion_scores

    torch.manual_seed(0)
    net = ChannelsLast().eval()
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(8))
    ex = sw.Explainer(net, x, intercept=False)
    base, grid, _, _ = occlusion_scores(ex, torch.zeros(2, dtype=torch.long), window=2, stride=2, output="activation", layer="fc", channel=3)
    torch.testing.assert_close(base, _raw_output(net, x, "fc")[..., 3].amax((1, 2)))
    assert grid.shape == (2, 3, 4)  # starts 0, 2 + the border patch at 3 (rows); 0, 2, 4 + 5 (columns)


def test_top_activations_of_a_token_layer_read_the_patch_grid() -> None:
    from saliency_widget.analysis import top_activations

    torch.manual_seed(0)
    net = TinyViT().eval()
    data = [torch.rand(3, 3, 8, 12, generator=torch.Generator().manual_seed(s)) for s in (10, 11)]
    top = top_activations(net, data, "norm", channels=[6], k=2, progress=False, project=False)
    # by hand: channel 6 of the patch tokens (3 prefix tokens dropped) of all 6 images
    patch = torch.cat([_raw_output(net, d, "norm")[:, 3:, 6] for d in data])  # (6, 2*3)
    best = patch.amax(1)
    values, order = best.topk(2)
    torch.testing.assert_close(top.values[0], values)
    assert top.image_index[0].tolist() == order.tolist()
    flat = patch[order].argmax(1)
    assert top.positions[0].tolist() == [[int(i) // 3, int(i) % 3] for i in flat]
