"""Layouts follow structure, not shape coincidence (issue 28): channel shuffles, window partitions and
their reverse, convolutions, attention heads, reshape patch embeddings; and the default Grad-CAM layer
is the last layer whose output feeds the classifier's global pooling."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.axes import Factor, canonical, reshape_axes
from saliency_widget.engine.cam import default_cam_layer
from saliency_widget.errors import LayerError
from tests.engine.model_zoo import timm_model, torchvision_model

# ----------------------------------------------------------------------------- the axis algebra

N, C, H, W = (Factor("n", 2),), (Factor("c", 6),), (Factor("h", 4, 1, 4),), (Factor("w", 6, 1, 6),)


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        # channel shuffle: the rows and columns are untouched, the channels regrouped
        ([(2, 2, 3, 4, 6), None, (2, 6, 4, 6)], ("NCHW", (4, 6), 0)),
        # flatten(2): (N, C, h*w), the half-way point of a patch embedding
        ([(2, 6, 24)], ("NCL", (4, 6), 0)),
        # rows split in (2, 2) and merged back in order: the rows again
        ([(2, 6, 2, 2, 6), (2, 6, 4, 6)], ("NCHW", (4, 6), 0)),
        # a space-to-depth (N, C, H/2, 2, W/2, 2) -> (N, C*4, H/2, W/2) without a permute mixes rows into channels
        ([(2, 6, 2, 2, 3, 2), (2, 6, 2, 2, 3, 2)], None),
    ],
)
def test_reshape_axes_regroups_factors(shapes: list[tuple[int, ...] | None], expected: tuple[str, Any, int] | None) -> None:
    axes: Any = (N, C, H, W)
    for shape in shapes:
        if shape is None:  # transpose(1, 2)
            axes = (axes[0], axes[2], axes[1], *axes[3:])
            continue
        axes = reshape_axes(axes, shape)
        assert axes is not None
    assert canonical(axes, 2) == expected


def test_window_partition_axes_are_not_a_grid_and_its_reverse_is() -> None:
    # (N, C, H, W) -> (N, H/2, 2, W/2, 2, C) -> (N, windows, pixels, C), torchvision MaxViT's WindowPartition
    axes = reshape_axes((N, C, H, W), (2, 6, 2, 2, 3, 2))
    assert axes is not None
    axes = tuple(axes[i] for i in (0, 2, 4, 3, 5, 1))
    part = reshape_axes(axes, (2, 6, 4, 6))  # 6 windows of 4 pixels, 6 channels: (6, 4, 6) like an NCHW 4 x 6 grid
    assert part is not None and canonical(part, 2) is None
    back = reshape_axes(part, (2, 2, 3, 2, 2, 6))
    assert back is not None
    back = reshape_axes(tuple(back[i] for i in (0, 5, 1, 3, 2, 4)), (2, 6, 4, 6))
    assert back is not None and canonical(back, 2) == ("NCHW", (4, 6), 0)


# ----------------------------------------------------------------------------- small modules, literal layouts


class Shuffle(nn.Module):
    """ShuffleNet-v2's channel shuffle: view -> transpose -> view."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class Partition(nn.Module):
    """(N, C, H, W) -> (N, H/P * W/P windows, P * P pixels, C), as torchvision MaxViT's."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.p
        x = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(n, (h // p) * (w // p), p * p, c)


class Departition(nn.Module):
    """The reverse of :class:`Partition`."""

    def __init__(self, p: int, h: int, w: int) -> None:
        super().__init__()
        self.p, self.h, self.w = p, h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, _, c = x.shape
        p, gh, gw = self.p, self.h // self.p, self.w // self.p
        x = x.reshape(n, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, c, gh * p, gw * p)


class WindowNet(nn.Module):
    """conv -> shuffle -> conv -> window attention (multi-head, matmul) -> departition -> conv -> pool -> head."""

    def __init__(self, c: int, h: int, w: int, p: int, heads: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.shuffle = Shuffle(2)
        self.conv2 = nn.Conv2d(c, c, 1)
        self.partition = Partition(p)
        self.norm = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.attn = nn.Identity()  # the attention map (N, windows, heads, pixels, pixels)
        self.mixed = nn.Identity()  # heads merged back: (N, windows, pixels, C)
        self.departition = Departition(p, h, w)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.head = nn.Linear(c, 5)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.shuffle(self.conv(x)))
        t = self.norm(self.partition(y))
        n, g, pix, c = t.shape
        q, k, v = self.qkv(t).reshape(n, g, pix, 3, self.heads, c // self.heads).permute(3, 0, 1, 4, 2, 5).unbind(0)
        a = self.attn(torch.softmax(q @ k.transpose(-2, -1), dim=-1))
        t = t + self.mixed((a @ v).permute(0, 1, 3, 2, 4).reshape(n, g, pix, c))
        z = self.conv3(self.departition(t))
        return self.head(z.mean((2, 3)))


def _layouts(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {i.key: (i.layout, i.shape) for i in sw.layers(model, x)}


def test_window_net_with_distinct_sizes_literal_layouts() -> None:
    # C=6, H=8, W=12, P=2: 24 windows of 4 pixels; no two sizes alike, so no shape can match a grid by chance
    got = _layouts(WindowNet(6, 8, 12, 2).eval(), torch.rand(1, 3, 8, 12))
    assert got == {
        "conv": ("NCHW", (6, 8, 12)),
        "shuffle": ("NCHW", (6, 8, 12)),
        "conv2": ("NCHW", (6, 8, 12)),
        "partition": ("ambiguous", (24, 4, 6)),
        "norm": ("ambiguous", (24, 4, 6)),
        "qkv": ("ambiguous", (24, 4, 18)),
        "attn": ("ambiguous", (24, 2, 4, 4)),
        "mixed": ("ambiguous", (24, 4, 6)),
        "departition": ("NCHW", (6, 8, 12)),
        "conv3": ("NCHW", (6, 8, 12)),
        "head": ("flat", (5,)),
    }


def test_window_net_twin_whose_partition_looks_like_a_grid() -> None:
    # C=16, H=W=16, P=4: the partition is (16 windows, 16 pixels, 16 channels), the shape of the NCHW
    # 16 x 16 grid of conv2; it is still a partition, and Grad-CAM refuses it
    model = WindowNet(16, 16, 16, 4).eval()
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    got = _layouts(model, x)
    twin = _layouts(WindowNet(6, 8, 12, 2).eval(), torch.rand(1, 3, 8, 12))
    assert {k: lay for k, (lay, _) in got.items()} == {k: lay for k, (lay, _) in twin.items()}
    assert got["partition"] == ("ambiguous", (16, 16, 16)) and got["conv2"] == ("NCHW", (16, 16, 16))
    ex = sw.Explainer(model, x, intercept=False)
    with pytest.raises(LayerError, match=r"Grad-CAM needs a spatial layer.*'partition' outputs \(1, 16, 16, 16\) with layout 'ambiguous'"):
        ex.saliency(method="gradcam", layer="partition")
    assert default_cam_layer(ex) == "conv3"


class Scrambled(nn.Module):
    """A gather the tracker cannot follow, then a convolution, which makes a grid of its output again."""

    def __init__(self) -> None:
        super().__init__()
        self.scramble = nn.Identity()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.head = nn.Linear(5, 3)
        self.register_buffer("perm", torch.randperm(3 * 6 * 7, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.scramble(x.flatten(1)[:, self.perm].view(-1, 3, 6, 7))
        return self.head(self.conv(y).mean((2, 3)))


def test_a_convolution_reestablishes_the_grid() -> None:
    got = _layouts(Scrambled().eval(), torch.rand(2, 3, 6, 7))
    assert got == {"scramble": ("ambiguous", (3, 6, 7)), "conv": ("NCHW", (5, 6, 7)), "head": ("flat", (3,))}


class ReshapeViT(nn.Module):
    """A patch embedding written as a 6-D rearrange (``b c (h p1) (w p2) -> b (h w) (p1 p2 c)``), mean-pooled."""

    def __init__(self, rearrange: Any, c: int = 10) -> None:
        super().__init__()
        self.patches = rearrange
        self.embed = nn.Linear(3 * 2 * 2, c)
        self.block = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, c), nn.GELU())
        self.grid = nn.Identity()
        self.head = nn.Linear(c, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(self.patches(x))
        t = t + self.block(t)
        g = self.grid(t.reshape(t.shape[0], x.shape[2] // 2, x.shape[3] // 2, -1))  # tokens reassembled into a grid
        return self.head(g.mean((1, 2)))


class ManualRearrange(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(n, (h // 2) * (w // 2), 4 * c)


def _einops() -> nn.Module:
    layers = pytest.importorskip("einops.layers.torch")
    return layers.Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=2, p2=2)


@pytest.mark.parametrize("rearrange", [pytest.param(_einops, id="einops"), pytest.param(ManualRearrange, id="reshape-permute")])
def test_rearrange_patch_embedding_is_a_token_grid(rearrange: Any) -> None:
    torch.manual_seed(0)
    model = ReshapeViT(rearrange()).eval()
    x = torch.rand(1, 3, 6, 10, generator=torch.Generator().manual_seed(1))  # a 3 x 5 patch grid
    got = _layouts(model, x)
    assert got == {
        "patches": ("tokens", (12, 3, 5)),
        "embed": ("tokens", (10, 3, 5)),
        "block.0": ("tokens", (10, 3, 5)),
        "block.1": ("tokens", (10, 3, 5)),
        "block.2": ("tokens", (10, 3, 5)),
        "block": ("tokens", (10, 3, 5)),
        "grid": ("NHWC", (10, 3, 5)),
        "head": ("flat", (4,)),
    }
    ex = sw.Explainer(model, x, intercept=False)
    assert default_cam_layer(ex) == "grid"
    # the token rows are the patches in row-major order: patch (1, 2) is token 1 * 5 + 2
    raw = ex.record("embed").tensor.detach()
    torch.testing.assert_close(ex.activation("embed")[0, :, 1, 2], raw[0, 7])


class Concat(nn.Module):
    """An Inception block in miniature: two branches concatenated, then the global pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


def test_default_layer_of_a_concatenating_block_is_the_block() -> None:
    model = nn.Sequential(Concat(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    ex = sw.Explainer(model, torch.rand(1, 3, 5, 6), intercept=False)
    assert default_cam_layer(ex) == "0"


# ----------------------------------------------------------------------------- named torchvision / timm models


def _maxvit(c: int, p: int, size: int) -> nn.Module:
    from torchvision.models.maxvit import MaxVit

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MaxVit(
            input_size=(size, size), stem_channels=c, block_channels=[c, 2 * c], block_layers=[1, 1], head_dim=c // 2,
            stochastic_depth_prob=0.0, partition_size=p, num_classes=5,
        ).eval()  # fmt: skip


@pytest.mark.slow
def test_maxvit_tiny_twins_partitions_are_ambiguous_and_gradcam_refuses_them() -> None:
    # C=16, P=4 on a 16 x 16 grid: every partition (16 windows, 16 pixels, 16 channels) looks like the grid
    size = 64
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    ex = sw.Explainer(_maxvit(16, 4, size), x, intercept=False)
    twin = sw.Explainer(_maxvit(20, 2, size), x, intercept=False)  # C=20, 64 windows of 4 pixels: all distinct
    got = {i.key: i.layout for i in ex.layers}
    assert got == {i.key: i.layout for i in twin.layers}
    parts = [i for i in ex.layers if i.name.endswith(".partition_op")]
    assert [i.raw_shape for i in parts] == [(16, 16, 16), (16, 16, 16), (4, 16, 32), (16, 4, 32)]
    assert Counter(i.layout for i in parts) == {"ambiguous": 4}
    departs = [i for i in ex.layers if i.name.endswith(".departition_op")]
    assert [(i.layout, i.shape) for i in departs] == [("NCHW", (16, 16, 16))] * 2 + [("NCHW", (32, 8, 8))] * 2
    assert [(got[b], ex.layers[[i.key for i in ex.layers].index(b)].shape) for b in ("blocks.0", "blocks.1")] == [
        ("NCHW", (16, 16, 16)),
        ("NCHW", (32, 8, 8)),
    ]
    with pytest.raises(LayerError, match="Grad-CAM needs a spatial layer"):
        ex.saliency(method="gradcam", layer=parts[0].name)
    best = default_cam_layer(ex)
    assert best == "blocks.1.layers.0.layers.grid_attention.departition_op"  # the last block's output tensor
    assert ex.record(best).tensor is ex.record("blocks.1").tensor


@pytest.mark.slow
def test_maxvit_t_partitions_are_never_a_grid() -> None:
    ex = sw.Explainer(torchvision_model("maxvit_t"), torch.rand(1, 3, 224, 224), intercept=False)
    by_key = {i.key: i for i in ex.layers}
    parts = [i for i in ex.layers if i.name.endswith(".partition_op")]
    assert len(parts) == 22 and {i.layout for i in parts} == {"ambiguous"}
    assert [(by_key[f"blocks.{b}"].layout, by_key[f"blocks.{b}"].shape[1:]) for b in range(4)] == [
        ("NCHW", (56, 56)), ("NCHW", (28, 28)), ("NCHW", (14, 14)), ("NCHW", (7, 7)),
    ]  # fmt: skip
    best = default_cam_layer(ex)
    assert best.startswith("blocks.3.") and ex.record(best).tensor is ex.record("blocks.3").tensor
    with pytest.raises(LayerError, match="Grad-CAM needs a spatial layer"):
        ex.saliency(method="gradcam", layer=parts[0].name)


def test_shufflenet_convs_after_the_channel_shuffle_are_nchw() -> None:
    ex = sw.Explainer(torchvision_model("shufflenet_v2_x0_5"), torch.rand(1, 3, 64, 64), intercept=False)
    convs = [i for i in ex.layers if i.type == "Conv2d"]
    assert len(convs) == 56 and Counter(i.layout for i in convs) == {"NCHW": 56}
    assert Counter(i.layout for i in ex.layers) == {"NCHW": 190, "flat": 1}
    by_key = {i.key: i for i in ex.layers}
    assert by_key["stage3.0"].shape == (96, 4, 4) and by_key["stage4"].shape == (192, 2, 2)
    assert default_cam_layer(ex) == "conv5.2"
    assert by_key["conv5.2"].shape == (1024, 2, 2)


@pytest.mark.slow
def test_inception_v3_default_layer_is_the_concatenated_block() -> None:
    model = torchvision_model("inception_v3", aux_logits=False, init_weights=True)
    x = torch.rand(1, 3, 107, 107, generator=torch.Generator().manual_seed(0))  # 107 px: a 2 x 2 Mixed_7c
    ex = sw.Explainer(model, x, intercept=False)
    assert default_cam_layer(ex) == "Mixed_7c"
    assert {i.key: i.shape for i in ex.layers}["Mixed_7c"] == (2048, 2, 2)
    cam = ex.saliency(0, "gradcam")
    assert bool(cam.any())
    torch.testing.assert_close(cam, ex.saliency(0, "gradcam", layer="Mixed_7c"))


@pytest.mark.slow
def test_levit_last_stage_is_recognised_and_is_the_default() -> None:
    model = timm_model("levit_128s", img_size=112)  # 7 x 7 tokens, then 4 x 4, then 2 x 2
    ex = sw.Explainer(model, torch.rand(1, 3, 112, 112), intercept=False)
    last = [i for i in ex.layers if i.name.startswith("stages.2.")]
    # all 89 token layers of the last stage (its downsampling attention reads the 4 x 4 grid); the 21
    # BatchNorm1d run on (N * tokens, C) are flat
    assert Counter(i.layout for i in last) == {"tokens": 89, "flat": 21}
    assert {i.shape[1:] for i in last if i.layout == "tokens"} == {(4, 4), (2, 2)}
    assert {i.type for i in last if i.layout == "flat"} == {"BatchNorm1d"}
    assert Counter(i.layout for i in ex.layers) == {"NCHW": 16, "tokens": 201, "flat": 54}
    assert default_cam_layer(ex) == "stages.2.blocks.3"
    assert bool(ex.saliency(method="gradcam").any())


class UnfoldEmbed(nn.Module):
    """A patch embedding through ``F.unfold`` (im2col): ``(N, 3 * 2 * 3, L)`` -> tokens on the 3 x 4 grid of patches."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Identity()
        self.embed = nn.Linear(18, 7)
        self.head = nn.Linear(7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = torch.nn.functional.unfold(x, kernel_size=(2, 3), stride=(2, 3))
        return self.head(self.embed(self.tokens(cols.transpose(1, 2))).mean(1))


def test_unfold_patch_embedding_is_a_token_grid() -> None:
    got = _layouts(UnfoldEmbed().eval(), torch.rand(1, 3, 6, 12))
    assert got == {"tokens": ("tokens", (18, 3, 4)), "embed": ("tokens", (7, 3, 4)), "head": ("flat", (2,))}


class LinearAttention(nn.Module):
    """EfficientViT's linear attention in miniature: heads split off an NCHW map, matmuls, a division
    broadcast over the channels, the heads merged back into ``(N, C, H, W)``."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(3, 12, 1)
        self.q = nn.Identity()
        self.out = nn.Identity()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q, k, v = self.qkv(x).reshape(n, 2, 6, h * w).transpose(-1, -2).chunk(3, dim=-1)  # 2 heads of 2
        q = self.q(torch.relu(q))
        v = torch.nn.functional.pad(v, (0, 1), value=1.0)
        o = q @ (k.transpose(-1, -2) @ v)
        o = o[..., :-1] / (o[..., -1:] + 1e-5)
        y = self.out(o.transpose(-1, -2).reshape(n, -1, h, w))
        return self.head(y.mean((2, 3)))


def test_linear_attention_heads_merged_back_are_nchw() -> None:
    got = _layouts(LinearAttention().eval(), torch.rand(2, 3, 5, 7))
    assert got == {
        "qkv": ("NCHW", (12, 5, 7)),
        "q": ("ambiguous", (2, 35, 2)),
        "out": ("NCHW", (4, 5, 7)),
        "head": ("flat", (2,)),
    }
