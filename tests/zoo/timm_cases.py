"""timm families, each a tiny config of one of its models (random weights, 10 classes, small input).

Depths, widths and heads are cut through the model's own keyword arguments (the builder passes
them to the model class), so every family's code runs as in the full model, only with fewer
and narrower blocks. ``fixed`` families take their input size at construction (``img_size``):
their twin is built again at the twin size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from tests.zoo.checks import Case, Size

CNN: Size = (32, 48)
CNN_TWIN: Size = (80, 112)
MID: Size = (64, 96)  # stride-32 models whose last stage must keep a grid larger than 1 x 1
MID_TWIN: Size = (96, 128)
# MobileViT-v2 resizes an odd stride-32 grid up to its 2 x 2 patches (F.interpolate: 2 x 3 -> 2 x 4), a grid
# no stride gives; at these sizes every grid is even, so the twin check sees its strides
EVEN: Size = (64, 128)
EVEN_TWIN: Size = (128, 192)


def _live(m: nn.Module) -> nn.Module:
    """Give the weights timm initialises to zero or near it random values (seeded: the builders run in :func:`seeded_build`).

    Else the checks compare zeros with zeros (or a few blocks' 1e-4 share of the signal):

    - a zero classifier (``MlpMixer``'s and Hiera's ``head``: every score and gradient 0):
      normal, std 0.02;
    - ResMLP's layer scales ``ls1`` / ``ls2`` (1e-4: the blocks barely add to the residual
      stream): 0.5, so that the token-mixing and channel blocks take part;
    - gMLP's spatial-gating projection (std 1e-6, bias 1: a gate of ones that mixes no
      tokens): normal, std 0.02, so that the tokens mix;
    - LeViT's attention biases (zeros) and the last BatchNorm gain of every residual branch
      (zeros): normal, std 1, and ones. LeViT has no position embedding: its attention
      biases are where the tokens' positions enter. At random weights the attention logits
      are ~1e-6 (a softmax of equal weights), so with zero biases every query of
      ``stages.1.downsample`` averages the same values and all tokens of the last stage are
      one token: Grad-CAM there has one value everywhere (the widget says so).
    """
    from timm.models.levit import Attention, AttentionDownsample, LinearNorm
    from timm.models.mlp_mixer import ResBlock, SpatialGatingUnit

    for mod in m.modules():
        if isinstance(mod, nn.Linear) and not bool(mod.weight.any()):
            nn.init.normal_(mod.weight, std=0.02)
        elif isinstance(mod, (Attention, AttentionDownsample)):
            nn.init.normal_(mod.attention_biases, std=1.0)
        elif isinstance(mod, LinearNorm) and not bool(mod.bn.weight.any()):
            nn.init.ones_(mod.bn.weight)
        elif isinstance(mod, SpatialGatingUnit):
            nn.init.normal_(mod.proj.weight, std=0.02)
        elif isinstance(mod, ResBlock):
            for ls in (mod.ls1, mod.ls2):
                nn.init.constant_(ls, 0.5)
    return m


def timm_builder(model: str, fixed: bool, **kw: Any) -> Callable[[Size], nn.Module]:
    """``size -> timm.create_model(model, pretrained=False, num_classes=10, **kw)`` (``img_size=size`` when ``fixed``)."""

    def build(size: Size) -> nn.Module:
        import timm

        m = timm.create_model(model, pretrained=False, num_classes=10, **kw, **({"img_size": size} if fixed else {}))
        return _live(m)

    return build


def tcase(
    family: str, model: str, size: Size = CNN, twin: Size = CNN_TWIN, *, fixed: bool = False,
    slow: bool = False, **kw: Any,
) -> Case:
    """The case of timm family ``family``: ``model`` with the tiny keyword arguments ``kw``."""
    return Case(family, timm_builder(model, fixed, **kw), size, twin, xfail=XFAIL.get(family, {}), slow=slow, fixed_size=fixed)


def _resolve(v: Any) -> Any:
    """``"module:Attr"`` strings (alone or in a list) imported; anything else as is."""
    if isinstance(v, str) and ":" in v:
        import importlib

        mod, attr = v.split(":")
        return getattr(importlib.import_module(mod), attr)
    if isinstance(v, list):
        return [_resolve(u) for u in v]
    return v


def ccase(family: str, cls: str, size: Size = CNN, twin: Size = CNN_TWIN, *, fixed: bool = False, **kw: Any) -> Case:
    """The case of a family whose builder fixes the depths: its model class ``"module:Class"`` with ``kw`` (``"module:Attr"`` values imported)."""

    def build(size_: Size) -> nn.Module:
        args = {k: _resolve(v) for k, v in kw.items()}
        return _live(_resolve(cls)(num_classes=10, **args, **({"img_size": size_} if fixed else {})))

    return Case(family, build, size, twin, xfail=XFAIL.get(family, {}), fixed_size=fixed)


MF = "timm.models.metaformer"
MIX = "timm.models.mlp_mixer"
# Known failures (issue 28's layout and default-layer work, as of the merge of a4bfe83): the family, then {check: reason}.
XFAIL: dict[str, dict[str, str]] = {}

VIT = dict(depth=2, embed_dim=32, num_heads=2)
STAGES4 = dict(depths=(1, 1, 1, 1))

CASES: list[Case] = [
    # ---------------------------------------------------------------- CNNs
    tcase("resnet", "resnet18", layers=(1, 1, 1, 1)),
    tcase("resnet_d", "resnet26d", layers=(1, 1, 1, 1)),
    tcase("efficientnet", "efficientnet_b0"),
    tcase("mobilenetv3", "mobilenetv3_small_050"),
    tcase("regnet", "regnetx_002"),
    tcase("convnext", "convnext_atto", MID, MID_TWIN, depths=(1, 1, 1, 1), dims=(16, 24, 40, 56)),
    tcase("densenet", "densenet121", MID, MID_TWIN, growth_rate=8, block_config=(1, 1, 1, 1)),
    tcase("dla", "dla46_c", MID, MID_TWIN),
    tcase("ghostnet", "ghostnet_050"),
    tcase("rexnet", "rexnet_100"),
    tcase("res2net", "res2net50_14w_8s", layers=(1, 1, 1, 1)),
    tcase("resnest", "resnest14d"),
    tcase("sknet", "skresnet18", layers=(1, 1, 1, 1)),
    tcase("repvgg", "repvgg_a0"),
    tcase("vovnet", "ese_vovnet19b_slim_dw", MID, MID_TWIN),
    tcase("nfnet", "nf_regnet_b0"),
    tcase("mobileone", "mobileone_s0"),
    tcase("dpn", "dpn48b"),
    tcase("inception_v4", "inception_v4", (96, 128), (128, 160)),
    tcase("tresnet", "tresnet_m", MID, MID_TWIN, layers=(1, 1, 1, 1)),
    tcase("hrnet", "hrnet_w18_small", MID, MID_TWIN),
    tcase("efficientvit_mit", "efficientvit_b0", MID, MID_TWIN),
    tcase("inception_next", "inception_next_atto", MID, MID_TWIN, depths=(1, 1, 1, 1)),
    tcase("mobilevit", "mobilevit_xxs", MID, MID_TWIN),
    tcase("mobilevitv2", "mobilevitv2_050", EVEN, EVEN_TWIN),
    tcase("edgenext", "edgenext_xx_small", MID, MID_TWIN),
    tcase("repvit", "repvit_m0_9", MID, MID_TWIN),
    # ---------------------------------------------------------------- MetaFormers, MLPs
    ccase("poolformer", f"{MF}:MetaFormer", MID, MID_TWIN, depths=(1, 1, 1, 1), dims=(16, 24, 40, 56), norm_layers=f"{MF}:GroupNorm1"),
    ccase("convformer", f"{MF}:MetaFormer", MID, MID_TWIN, depths=(1, 1, 1, 1), dims=(16, 24, 40, 56), token_mixers=f"{MF}:SepConv"),
    ccase("caformer", f"{MF}:MetaFormer", MID, MID_TWIN, depths=(1, 1, 1, 1), dims=(16, 24, 64, 96), token_mixers=[f"{MF}:SepConv"] * 2 + [f"{MF}:Attention"] * 2, norm_layers=[f"{MF}:LayerNorm2dNoBias"] * 2 + [f"{MF}:LayerNormNoBias"] * 2),
    ccase("mlp_mixer", f"{MIX}:MlpMixer", (32, 48), (48, 80), fixed=True, patch_size=16, num_blocks=2, embed_dim=32),
    ccase("resmlp", f"{MIX}:MlpMixer", (32, 48), (48, 80), fixed=True, patch_size=16, num_blocks=2, embed_dim=32, mlp_ratio=4, block_layer=f"{MIX}:ResBlock", norm_layer=f"{MIX}:Affine"),
    ccase("gmlp", f"{MIX}:MlpMixer", (32, 48), (48, 80), fixed=True, patch_size=16, num_blocks=2, embed_dim=32, mlp_ratio=6, block_layer=f"{MIX}:SpatialGatingBlock", mlp_layer="timm.layers:GatedMlp"),
    # ---------------------------------------------------------------- ViTs
    tcase("vit", "vit_tiny_patch16_224", (24, 40), (40, 56), fixed=True, patch_size=8, **VIT),
    tcase("vit_registers", "vit_small_patch14_reg4_dinov2", (28, 42), (42, 70), fixed=True, **VIT),
    tcase("deit_distilled", "deit_tiny_distilled_patch16_224", (24, 40), (40, 56), fixed=True, patch_size=8, **VIT),
    tcase("beit", "beit_base_patch16_224", (24, 40), (40, 56), fixed=True, patch_size=8, **VIT),
    tcase("eva02", "eva02_tiny_patch14_224", (28, 42), (42, 70), fixed=True, **VIT),
    tcase("cait", "cait_xxs24_224", (24, 40), (40, 56), fixed=True, patch_size=8, depth_token_only=1, **VIT),
    tcase("xcit", "xcit_nano_12_p16_224", (32, 48), (48, 80), fixed=True, depth=2, embed_dim=32, num_heads=2),
    tcase("pit", "pit_ti_224", MID, MID_TWIN, fixed=True, depth=(1, 1, 1), base_dims=(16, 16, 16), heads=(1, 2, 2)),
    tcase("convit", "convit_tiny", (24, 24), (40, 40), fixed=True, patch_size=8, depth=2, embed_dim=32, num_heads=2),
    ccase("volo", "timm.models.volo:VOLO", (64, 64), (96, 96), fixed=True, layers=[1, 1, 1, 1], embed_dims=[32, 48, 48, 48], num_heads=[1, 2, 2, 2], stem_hidden_dim=16),
    # ---------------------------------------------------------------- hierarchical transformers, hybrids
    tcase("swin", "swin_tiny_patch4_window7_224", MID, MID_TWIN, fixed=True, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4),
    tcase("swinv2", "swinv2_tiny_window8_256", MID, MID_TWIN, fixed=True, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4),
    tcase("twins_svt", "twins_svt_small", MID, MID_TWIN, fixed=True, embed_dims=(16, 24, 40, 56), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
    tcase("pvt_v2", "pvt_v2_b0", MID, MID_TWIN, depths=(1, 1, 1, 1)),
    tcase("tiny_vit", "tiny_vit_5m_224", MID, MID_TWIN, depths=(1, 1, 1, 1), embed_dims=(16, 24, 40, 56), num_heads=(1, 1, 2, 2)),
    tcase("davit", "davit_tiny", MID, MID_TWIN, depths=(1, 1, 1, 1), embed_dims=(16, 24, 40, 56), num_heads=(1, 1, 2, 2)),
    ccase("focalnet", "timm.models.focalnet:FocalNet", MID, MID_TWIN, depths=(1, 1, 1, 1), embed_dim=16),
    tcase("coat", "coat_lite_tiny", (64, 64), (96, 96), fixed=True, embed_dims=(16, 24, 40, 56), serial_depths=(1, 1, 1, 1)),
    tcase("maxvit", "maxvit_rmlp_pico_rw_256", (64, 64), (96, 96), fixed=True),
    tcase("coatnet", "coatnet_pico_rw_224", (64, 64), (128, 128), fixed=True),
    tcase("levit", "levit_128s", (128, 128), (192, 192), fixed=True),
    # its last stage's attention biases are fixed to a 7 x 7 grid: inputs of 193 to 224 pixels
    ccase("efficientformer", "timm.models.efficientformer:EfficientFormer", (224, 224), (200, 216), depths=(1, 1, 1, 1), embed_dims=(16, 24, 40, 56), num_vit=1),
    tcase("efficientformerv2", "efficientformerv2_s0", (64, 64), (96, 96), fixed=True, depths=(1, 1, 1, 1)),
    tcase("fastvit", "fastvit_t8", MID, MID_TWIN, layers=(1, 1, 1, 1)),
    ccase("gcvit", "timm.models.gcvit:GlobalContextVit", (64, 64), (128, 128), fixed=True, depths=(1, 1, 1, 1), embed_dim=24, num_heads=(1, 1, 2, 2)),
    tcase("hiera", "hiera_tiny_224", (64, 64), (128, 128), fixed=True, embed_dim=16, num_heads=1, stages=(1, 1, 1, 1)),
    tcase("efficientvit_msra", "efficientvit_m0", (128, 128), (192, 192), fixed=True, depth=(1, 1, 1)),
]
