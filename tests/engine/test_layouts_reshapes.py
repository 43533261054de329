"""Layouts through paddings, reductions and convolutions of tensors that are no grid (issue 28).

Each pattern comes from a timm family whose layers were mislabelled, rebuilt here in miniature:
TinyViT / DaViT window attention padded up to one window (the window's grid is not the image's),
EfficientFormer-v2's talking heads (a 1 x 1 convolution over an attention map ``(N, heads, T, T)``),
MobileViT-v2's convolutions over unfolded patches ``(N, C, pixels, patches)``, and Hiera's mask-unit
unroll with its pooling by a max over each cell's tokens (the grid again once the strides are consumed).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.axes import Factor, canonical, conv_axes, index_axes, pad_axes, reduce_axes
from saliency_widget.engine.cam import default_cam_layer
from saliency_widget.errors import LayerError

N, C = (Factor("n", 1),), (Factor("c", 6),)
H, W = (Factor("h", 4, 1, 4),), (Factor("w", 6, 1, 6),)


def _layouts(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {i.key: (i.layout, i.shape) for i in sw.layers(model, x)}


# ----------------------------------------------------------------------------- the axis algebra


def test_a_padded_grid_is_no_grid_until_the_padding_is_cropped_off() -> None:
    # (N, H=4, W=6, C) padded to one 7 x 7 window: rows 4 + 3, columns 6 + 1
    padded = pad_axes((N, H, W, C), (0, 0, 0, 1, 0, 3))
    assert padded == (N, (Factor("h", 7, 1, 7, (0, 3)),), (Factor("w", 7, 1, 7, (0, 1)),), C)
    assert canonical(padded, 1) is None
    assert canonical(padded, 1, padded=True) == ("NHWC", (7, 7), 0)
    assert canonical(index_axes(padded, (slice(None), slice(None, 4), slice(None, 6)), (1, 4, 6, 6)), 1) == ("NHWC", (4, 6), 0)  # type: ignore[arg-type]
    # a crop that is not the padding's: no grid
    assert canonical(index_axes(padded, (slice(None), slice(1, 5), slice(None, 6)), (1, 4, 6, 6)), 1) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("axes", "dims", "keepdim", "expected"),
    [
        # rows split (outer 2 x stride 2, inner 2), columns (outer 3 x stride 2, inner 2): a max over both inner digits
        # pools 2 x 2 cells: the outer digits are the rows and columns of the 2 x 3 grid
        (
            (N, (Factor("h", 2, 1, 4), Factor("w", 2, 1, 6)), (Factor("h", 2, 2, 4), Factor("w", 3, 2, 6)), C),
            (1,), False,
            (N, (Factor("h", 2, 1, 2), Factor("w", 3, 1, 3)), C),
        ),
        # a mean over the outer digits (the windows) is no pooling: the pixels of a window are left, no grid
        (
            (N, (Factor("h", 2, 1, 4), Factor("w", 2, 1, 6)), (Factor("h", 2, 2, 4), Factor("w", 3, 2, 6)), C),
            (2,), True,
            (N, (Factor("h", 2, 1, 4), Factor("w", 2, 1, 6)), (), C),
        ),
    ],
)  # fmt: skip
def test_reduce_axes_pools_only_the_least_significant_digits(axes: tuple, dims: tuple[int, ...], keepdim: bool, expected: tuple) -> None:
    got = reduce_axes(axes, dims, keepdim)
    assert got == expected
    assert (canonical(got, 1) is not None) == (expected[1] == (Factor("h", 2, 1, 2), Factor("w", 3, 1, 3)))


def test_conv_axes_keeps_an_attention_map_and_makes_a_grid_of_a_grid() -> None:
    tokens = (Factor("h", 4, 1, 4), Factor("w", 6, 1, 6))
    heads = (Factor("c", 2),)
    assert conv_axes((N, heads, tokens, tokens), (1, 2, 24, 24)) == (N, heads, tokens, tokens)
    assert conv_axes((N, C, H, W), (1, 5, 4, 6)) is None
    assert conv_axes((N, C, W, H), (1, 5, 6, 4)) == (N, (Factor("c", 5),), W, H)  # rows and columns swapped: no grid


# ----------------------------------------------------------------------------- TinyViT / DaViT: padded windows


class PaddedWindows(nn.Module):
    """TinyViT's / DaViT's window attention: the NHWC grid padded up to whole P x P windows, partitioned,
    attended, reversed, cropped back to the grid and added to the shortcut."""

    def __init__(self, c: int = 6, p: int = 7) -> None:
        super().__init__()
        self.p = p
        self.embed = nn.Conv2d(3, c, 3, padding=1)
        self.pad = nn.Identity()  # (N, Hp, Wp, C)
        self.windows = nn.Identity()  # (N * windows, P * P, C)
        self.qkv = nn.Linear(c, 3 * c)
        self.attn = nn.Identity()  # (N * windows, P * P, C)
        self.reverse = nn.Identity()  # (N, Hp, Wp, C)
        self.crop = nn.Identity()  # (N, H, W, C)
        self.block = nn.Identity()  # shortcut + attention
        self.head = nn.Linear(c, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x).permute(0, 2, 3, 1)
        n, h, w, c = y.shape
        p = self.p
        pad_b, pad_r = (p - h % p) % p, (p - w % p) % p
        t = self.pad(F.pad(y, (0, 0, 0, pad_r, 0, pad_b)))
        gh, gw = (h + pad_b) // p, (w + pad_r) // p
        t = self.windows(t.view(n, gh, p, gw, p, c).transpose(2, 3).reshape(n * gh * gw, p * p, c))
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        t = self.attn(torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v)
        t = self.reverse(t.view(n, gh, gw, p, p, c).transpose(2, 3).reshape(n, gh * p, gw * p, c))
        t = self.crop(t[:, :h, :w])
        z = self.block(y + t)
        return self.head(z.mean((1, 2)))


def _windows(size: tuple[int, int], pad: str, win: str, grid: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    h, w = size
    hp, wp = -(-h // 7) * 7, -(-w // 7) * 7
    return {
        "embed": ("NCHW", (6, h, w)),
        "pad": (pad, (6, hp, wp) if pad == "NHWC" else (hp, wp, 6)),
        "windows": (win, (6, 7, 7) if win == "tokens" else (49, 6)),
        "qkv": (win, (18, 7, 7) if win == "tokens" else (49, 18)),
        "attn": (win, (6, 7, 7) if win == "tokens" else (49, 6)),
        "reverse": (grid, (6, hp, wp) if grid == "NHWC" else (hp, wp, 6)),
        "crop": ("NHWC", (6, h, w)),
        "block": ("NHWC", (6, h, w)),
        "head": ("flat", (4,)),
    }


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # a 4 x 6 grid padded to one 7 x 7 window: (49, 6) is the shape of 7 x 7 tokens, the window's grid, not the image's
        pytest.param((4, 6), _windows((4, 6), "ambiguous", "ambiguous", "ambiguous"), id="one-padded-window"),
        # 8 x 10 padded to 14 x 14: 4 windows, a batch of windows
        pytest.param((8, 10), _windows((8, 10), "ambiguous", "ambiguous", "ambiguous"), id="four-padded-windows"),
        # a 7 x 7 grid is one window without padding: its tokens are the image's grid
        pytest.param((7, 7), _windows((7, 7), "NHWC", "tokens", "NHWC"), id="one-window-unpadded"),
    ],
)
def test_padded_window_attention_is_no_grid(size: tuple[int, int], expected: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    torch.manual_seed(0)
    assert _layouts(PaddedWindows().eval(), torch.rand(1, 3, *size)) == expected


def test_gradcam_refuses_a_padded_window_and_defaults_to_the_block() -> None:
    torch.manual_seed(0)
    ex = sw.Explainer(PaddedWindows().eval(), torch.rand(1, 3, 4, 6), intercept=False)
    with pytest.raises(LayerError, match=r"Grad-CAM needs a spatial layer.*'attn' outputs \(1, 49, 6\) with layout 'ambiguous'"):
        ex.saliency(method="gradcam", layer="attn")
    assert default_cam_layer(ex) == "block"


class SamePadding(nn.Module):
    """Paddings that stay on the grid: a 'same' max pool (timm's ``MaxPool2dSame``: pad, then pool) and
    torchvision Swin's patch merging of an odd grid (pad to even, four strided slices, concatenated)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.pool = nn.Identity()
        self.merge = nn.Identity()
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(F.max_pool2d(self.pad(self.conv(x)), 2))
        t = y.permute(0, 2, 3, 1)
        t = F.pad(t, (0, 0, 0, t.shape[2] % 2, 0, t.shape[1] % 2))
        t = self.merge(torch.cat([t[:, 0::2, 0::2], t[:, 1::2, 0::2], t[:, 0::2, 1::2], t[:, 1::2, 1::2]], -1))
        return self.head(t.mean((1, 2)))


def test_a_pooled_or_subsampled_padded_grid_is_a_grid() -> None:
    got = _layouts(SamePadding().eval(), torch.rand(1, 3, 7, 9))
    assert got == {
        "conv": ("NCHW", (4, 5, 7)),
        "pad": ("ambiguous", (4, 6, 8)),  # 6 x 8 cells of which the image covers 5 x 7
        "pool": ("NCHW", (4, 3, 4)),
        "merge": ("NHWC", (16, 2, 2)),
        "head": ("flat", (2,)),
    }


# ----------------------------------------------------------------------------- EfficientFormer-v2: talking heads


class TalkingHeads(nn.Module):
    """EfficientFormer-v2's attention: q, k, v from 1 x 1 convolutions, the attention map (N, heads, T, T)
    mixed across heads by 1 x 1 convolutions, the heads merged back into (N, C, H, W)."""

    def __init__(self, c: int = 4, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Conv2d(3, c, 1), nn.Conv2d(3, c, 1), nn.Conv2d(3, c, 1)
        self.talking_head1 = nn.Conv2d(heads, heads, 1)
        self.talking_head2 = nn.Conv2d(heads, heads, 1)
        self.proj = nn.Conv2d(c, c, 1)
        self.head = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q = self.q(x).reshape(n, self.heads, -1, h * w).permute(0, 1, 3, 2)
        k = self.k(x).reshape(n, self.heads, -1, h * w)
        v = self.v(x).reshape(n, self.heads, -1, h * w).permute(0, 1, 3, 2)
        a = self.talking_head2(self.talking_head1(q @ k).softmax(dim=-1))
        y = self.proj((a @ v).transpose(2, 3).reshape(n, -1, h, w))
        return self.head(y.mean((2, 3)))


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        pytest.param((3, 5), 15, id="distinct-sizes"),
        pytest.param((2, 2), 4, id="attention-shaped-like-a-4x4-grid"),  # (2 heads, 4, 4): the shape of an NCHW 4 x 4 map
    ],
)
def test_talking_head_convolutions_over_an_attention_map_are_no_grid(size: tuple[int, int], tokens: int) -> None:
    torch.manual_seed(0)
    got = _layouts(TalkingHeads().eval(), torch.rand(1, 3, *size))
    assert got == {
        "q": ("NCHW", (4, *size)),
        "k": ("NCHW", (4, *size)),
        "v": ("NCHW", (4, *size)),
        "talking_head1": ("ambiguous", (2, tokens, tokens)),
        "talking_head2": ("ambiguous", (2, tokens, tokens)),
        "proj": ("NCHW", (4, *size)),
        "head": ("flat", (3,)),
    }


# ----------------------------------------------------------------------------- MobileViT-v2: unfolded patches


class UnfoldedPatches(nn.Module):
    """MobileViT-v2's block: the grid unfolded into (N, C, pixels per patch, patches), 1 x 1 convolutions
    and a linear attention over the patches, folded back into (N, C, H, W)."""

    def __init__(self, c: int = 4, p: int = 2) -> None:
        super().__init__()
        self.p = p
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.qkv_proj = nn.Conv2d(c, 1 + 2 * c, 1)
        self.out_proj = nn.Conv2d(c, c, 1)
        self.fold = nn.Identity()
        self.head = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, c, h, w = y.shape
        p = self.p
        u = y.reshape(n, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4).reshape(n, c, p * p, -1)
        query, key, value = self.qkv_proj(u).split([1, c, c], dim=1)
        context = (key * query.softmax(dim=-1)).sum(dim=-1, keepdim=True)
        u = self.out_proj(torch.relu(value) * context.expand_as(value))
        z = self.fold(u.reshape(n, c, p, p, h // p, w // p).permute(0, 1, 4, 2, 5, 3).reshape(n, c, h, w))
        return self.head(z.mean((2, 3)))


def test_convolutions_over_unfolded_patches_are_no_grid_and_the_fold_is() -> None:
    torch.manual_seed(0)
    got = _layouts(UnfoldedPatches().eval(), torch.rand(1, 3, 6, 10))  # 4 pixels per patch, 3 x 5 patches
    assert got == {
        "conv": ("NCHW", (4, 6, 10)),
        "qkv_proj": ("ambiguous", (9, 4, 15)),
        "out_proj": ("ambiguous", (4, 4, 15)),
        "fold": ("NCHW", (4, 6, 10)),
        "head": ("flat", (3,)),
    }


# ----------------------------------------------------------------------------- Hiera: mask-unit unroll and pooling


class Unroll(nn.Module):
    """Hiera's ``Unroll``: tokens ``(N, H*W, C)`` reordered so that the tokens of each 2 x 2 cell are
    contiguous, twice (the strides moved to the batch axis and back)."""

    def __init__(self, size: tuple[int, int], times: int) -> None:
        super().__init__()
        self.size, self.times = size, times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        cur = list(self.size)
        x = x.view(b, *cur, c)
        for _ in range(self.times):
            cur = [cur[0] // 2, cur[1] // 2]
            x = x.view(b, cur[0], 2, cur[1], 2, c).permute(0, 2, 4, 1, 3, 5).flatten(0, 2)
            b *= 4
        return x.reshape(-1, self.size[0] * self.size[1], c)


class MaskUnits(nn.Module):
    """Hiera in miniature: a patch embedding, the unroll, then two poolings by a max over the 4 tokens
    of each cell (``view(N, 4, -1, C).amax(1)``); once both strides are consumed the tokens are the grid."""

    def __init__(self, size: tuple[int, int], c: int = 4) -> None:
        super().__init__()
        self.c = c
        self.embed = nn.Conv2d(3, c, 2, stride=2)
        self.unroll = Unroll((size[0] // 2, size[1] // 2), 2)
        self.pool1 = nn.Identity()
        self.pool2 = nn.Identity()
        self.head = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.unroll(self.embed(x).flatten(2).transpose(1, 2))
        n = t.shape[0]
        t = self.pool1(t.view(n, 4, -1, self.c).amax(dim=1))
        t = self.pool2(t.view(n, 4, -1, self.c).amax(dim=1))
        return self.head(t.mean(1))


def test_mask_unit_pooling_gives_the_grid_back_once_the_strides_are_consumed() -> None:
    torch.manual_seed(0)
    model = MaskUnits((16, 24)).eval()
    x = torch.rand(1, 3, 16, 24)  # an 8 x 12 patch grid, 4 x 6 after one pooling, 2 x 3 after two
    assert _layouts(model, x) == {
        "embed": ("NCHW", (4, 8, 12)),
        "unroll": ("ambiguous", (96, 4)),
        "pool1": ("ambiguous", (24, 4)),  # still in the unrolled order (cells of cells)
        "pool2": ("tokens", (4, 2, 3)),
        "head": ("flat", (3,)),
    }
    ex = sw.Explainer(model, x, intercept=False)
    assert default_cam_layer(ex) == "pool2"
    # the tokens are the 2 x 3 grid in row-major order: each the max over its 4 x 4 patches
    torch.testing.assert_close(ex.activation("pool2"), F.max_pool2d(ex.activation("embed"), 4))
