"""The methods' settings the user can change: one frozen :class:`MethodSettings`, one field per setting.

Each field is declared once with :func:`~.spec.setting` (kind, default, valid range, label,
help, the methods it applies to and the engine option it becomes). The explorer's traits,
validators and controls, the compute (:meth:`MethodSettings.engine_options`), the memo keys and
the exports are generated from these declarations, as for :class:`~.options.DisplayOptions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..engine import LayerInfo, method_label
from ..engine.cam import CAM_METHODS
from ..engine.layouts import SPATIAL_LAYOUTS
from ..engine.lrprules import COMPOSITES, FIRST_RULES
from ..errors import InputError, choices
from .spec import Spec, check_value, setting, specs_of

__all__ = [
    "BASELINES", "CAM_LAYER_METHODS", "LRP_FIRST", "MethodSettings", "baseline_tensor", "box_bounds", "cam_layer_choices",
    "setting_specs", "settings_text",
]

#: Integrated Gradients' starting images offered in the explorer.
BASELINES: tuple[str, ...] = ("zeros", "black", "white", "blur")
#: The methods that read a CAM layer (``layer=``): every CAM and Guided Grad-CAM.
CAM_LAYER_METHODS: tuple[str, ...] = (*(m.name for m in CAM_METHODS), "guided_gradcam")
#: LRP's first-layer rules offered: ``"default"`` (the composite's own) and the engine's :data:`~saliency_widget.engine.lrprules.FIRST_RULES`.
LRP_FIRST: tuple[str, ...] = ("default", *FIRST_RULES)


@dataclass(frozen=True)
class MethodSettings:
    """The methods' settings the explorer offers (each applies to the methods its spec names).

    Attributes
    ----------
    smoothgrad_samples, smoothgrad_noise
        SmoothGrad's number of noisy copies and noise level (fraction of the input's range).
    ig_steps, ig_baseline
        Integrated Gradients' path points and starting image (one of :data:`BASELINES`).
    occlusion_window, occlusion_stride
        Occlusion's patch side and step, in input pixels.
    cam_layer
        The layer every CAM method reads (``""``: the engine's default CAM layer).
    lrp_composite, lrp_first
        LRP's composite (rules per layer kind, zennit's names) and its first layer's rule
        (``"default"``: the composite's own).
    lrp_epsilon, lrp_gamma, lrp_alpha
        LRP's ε of the ε rule, γ of the γ rule (``"epsilon_gamma_box"`` only) and α of the α-β
        rule (``"alpha_beta"`` only; β = α − 1).
    """

    smoothgrad_samples: int = setting(
        "int", 25, "samples", "SmoothGrad: how many noisy copies of the input are averaged (more: smoother, slower)",
        lo=1, hi=500, what="a number of samples", shown=(1, 100), step=1, methods=("smoothgrad",), engine="n",
    )
    smoothgrad_noise: float = setting(
        "float", 0.15, "noise", "SmoothGrad: noise level, as a fraction of the input's value range",
        lo=0.0, hi=1.0, what="a fraction of the input range", shown=(0.0, 0.5), step=0.01, methods=("smoothgrad",), engine="noise",
    )
    ig_steps: int = setting(
        "int", 32, "steps", "Integrated Gradients: points on the path from the baseline to the input (more: closer to exact)",
        lo=1, hi=512, what="a number of steps", shown=(1, 128), step=1, methods=("integrated_gradients",), engine="steps",
    )
    ig_baseline: str = setting(
        "choice", "zeros", "baseline",
        "Integrated Gradients: the starting image: zeros of the model's input, a black or white image, or a blurred input",
        choices=BASELINES, methods=("integrated_gradients",), engine="baseline",
    )
    occlusion_window: int = setting(
        "int", 16, "window", "Occlusion: side of the grey patch, in input pixels",
        lo=1, hi=1024, what="a patch side in pixels", shown=(2, 64), step=1, methods=("occlusion",), engine="window",
    )
    occlusion_stride: int = setting(
        "int", 8, "stride", "Occlusion: step between patches, in input pixels (smaller: finer, slower)",
        lo=1, hi=1024, what="a step in pixels", shown=(1, 64), step=1, methods=("occlusion",), engine="stride",
    )
    cam_layer: str = setting(
        "choice", "", "CAM layer", "the layer Grad-CAM and the other CAM methods read (default: the engine's choice)",
        methods=CAM_LAYER_METHODS, engine="layer",
    )
    lrp_composite: str = setting(
        "choice", "epsilon_plus", "composite",
        "LRP: the rules per layer (zennit's composites): epsilon (ε everywhere), epsilon_plus (z⁺ convolutions, ε dense "
        "layers), epsilon_plus_flat (and a flat first layer), epsilon_gamma_box (γ convolutions, z^B first layer), "
        "alpha_beta (α-β convolutions)",
        choices=tuple(COMPOSITES), methods=("lrp",), engine="composite",
    )
    lrp_first: str = setting(
        "choice", "default", "first layer",
        "LRP: the first layer's rule: default (the composite's: flat for epsilon_plus_flat, z^B for epsilon_gamma_box, "
        "else none), none (its kind's rule), flat, wsquare (w²) or zbox (z^B, bounded by the model's pixel range)",
        choices=LRP_FIRST, methods=("lrp",), engine="first",
    )
    lrp_epsilon: float = setting(
        "float", 1e-6, "ε", "LRP: ε of the ε rule (dense layers; every layer for the epsilon composite): larger ε keeps "
        "only the strongest contributions, a sparser, less noisy map",
        lo=0.0, lo_open=True, hi=100.0, what="a stabiliser", shown=(1e-9, 1.0), step=0.5, log=True, methods=("lrp",),
        engine="epsilon",
    )
    lrp_gamma: float = setting(
        "float", 0.25, "γ", "LRP (epsilon_gamma_box): γ of the γ rule on the convolutions; larger γ favours positive "
        "contributions more",
        lo=0.0, hi=100.0, what="a weight", shown=(0.0, 2.0), step=0.05, methods=("lrp",), engine="gamma",
        when=("lrp_composite", ("epsilon_gamma_box",)),
    )
    lrp_alpha: float = setting(
        "float", 2.0, "α", "LRP (alpha_beta): α of the α-β rule on the convolutions, β = α − 1 (relevance is conserved "
        "only then); α = 1 is z⁺",
        lo=1.0, hi=100.0, what="a weight (alpha, >= 1)", shown=(1.0, 4.0), step=0.5, methods=("lrp",), engine="alpha",
        when=("lrp_composite", ("alpha_beta",)),
    )

    def __post_init__(self) -> None:
        for spec in setting_specs(type(self)):
            value = getattr(self, spec.name)
            if not (spec.name == "cam_layer" and value == ""):  # "": the engine's default layer
                object.__setattr__(self, spec.name, check_value(spec, value))

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def of(cls, value: MethodSettings | Mapping[str, Any] | None) -> MethodSettings:
        """``value`` as settings: itself, a dict of some fields (the others keep their defaults), or None (all defaults).

        Raises
        ------
        InputError
            A key that is no setting (the valid names listed), or a bad value.
        """
        if isinstance(value, MethodSettings):
            return value
        given = dict(value or {})
        unknown = sorted(set(given) - set(cls.names()))
        if unknown:
            raise InputError(f"unknown method setting(s) {unknown}; expected names from {choices(cls.names())}")
        return cls(**given)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The setting names, in order."""
        return tuple(s.name for s in setting_specs(cls))

    def reads(self, spec: Spec, method: str) -> bool:
        """Whether ``method`` reads setting ``spec`` with these values (e.g. LRP's γ only with the γ composite)."""
        if method not in spec.methods:
            return False
        return spec.when is None or getattr(self, spec.when[0]) in spec.when[1]

    def for_method(self, method: str) -> dict[str, Any]:
        """``{setting name: value}`` of the settings ``method`` reads (what a map of it depends on)."""
        return {s.name: getattr(self, s.name) for s in setting_specs(type(self)) if self.reads(s, method)}

    def engine_options(
        self, method: str, inputs: torch.Tensor | None = None, mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> dict[str, Any]:
        """The engine options of ``method`` (``explainer.saliency(method=method, **options)``).

        Parameters
        ----------
        method
            Registered method name.
        inputs
            ``(N, C, H, W)`` model inputs (for IG's black, white and blurred baselines).
        mean, std
            The model's input normalisation (black and white are pixel values 0 and 1 before it;
            LRP's z^B bounds are the pixel range 0..1 through it, :func:`box_bounds`).
        """
        out: dict[str, Any] = {}
        for s in setting_specs(type(self)):
            if not self.reads(s, method):
                continue
            value = getattr(self, s.name)
            if s.name == "cam_layer":
                value = value or None
            elif s.name == "ig_baseline":
                value = baseline_tensor(value, inputs, mean, std)
            elif s.name == "lrp_first" and value == "default":
                value = None  # the composite's own
            out[s.engine] = value
        if method == "lrp":
            out["low"], out["high"] = box_bounds(inputs, mean, std)
        return out


def setting_specs(cls: type | None = None) -> tuple[Spec, ...]:
    """The :class:`~.spec.Spec` of every method setting (of ``cls``, default :class:`MethodSettings`)."""
    return specs_of(cls if cls is not None else MethodSettings)


def baseline_tensor(
    name: str, inputs: torch.Tensor | None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> torch.Tensor | float | None:
    """Integrated Gradients' baseline ``name`` (one of :data:`BASELINES`) for ``inputs`` ``(N, C, H, W)``.

    ``"zeros"`` is None (the engine's zeros of the normalised input); ``"black"`` and ``"white"``
    are the pixel values 0 and 1 through the normalisation ``(v - mean) / std`` (``(1, C, 1, 1)``;
    without normalisation the floats 0 and 1); ``"blur"`` is the input blurred with a Gaussian of
    sigma 1/16 of its height.
    """
    check_value(setting_specs()[[s.name for s in setting_specs()].index("ig_baseline")], name)
    if name == "zeros":
        return None
    if name in ("black", "white"):
        v = 0.0 if name == "black" else 1.0
        if mean is None or std is None or inputs is None:
            return v
        m = torch.as_tensor(list(mean), dtype=inputs.dtype, device=inputs.device).view(1, -1, 1, 1)
        s = torch.as_tensor(list(std), dtype=inputs.dtype, device=inputs.device).view(1, -1, 1, 1)
        return (v - m) / s
    if inputs is None:
        return None
    from torchvision.transforms.functional import gaussian_blur

    h, w = inputs.shape[-2], inputs.shape[-1]
    sigma = max(1.0, h / 16)
    k = min(2 * math.ceil(3 * sigma) + 1, (min(h, w) - 1) // 2 * 2 + 1)
    return gaussian_blur(inputs.detach(), [k, k], [sigma, sigma]) if k >= 3 else inputs.detach().clone()


def box_bounds(
    inputs: torch.Tensor | None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """LRP's z^B bounds: the pixel values 0 and 1 through the normalisation, ``(1, C, 1, 1)`` each (else 0.0 and 1.0).

    The model-ready values a pixel in [0, 1] can take, as :func:`baseline_tensor`'s black and white.
    """
    low, high = baseline_tensor("black", inputs, mean, std), baseline_tensor("white", inputs, mean, std)
    return (0.0 if low is None else low), (1.0 if high is None else high)


def cam_layer_choices(layers: Sequence[LayerInfo]) -> list[tuple[str, str]]:
    """``(label, key)`` of every layer a CAM can read: a spatial layout with an ``h x w > 1`` grid, in forward order."""
    spatial = [i for i in layers if i.layout in SPATIAL_LAYOUTS and i.shape[1] * i.shape[2] > 1]
    return [(f"{i.key}  ({i.type}, {'x'.join(str(s) for s in i.shape)})", i.key) for i in spatial]


def settings_text(settings: MethodSettings, methods: Sequence[str]) -> dict[str, str]:
    """``{"<method label> settings": "samples 25, noise 0.15"}`` for each of ``methods`` that has settings (for reports)."""
    specs = {s.name: s for s in setting_specs(type(settings))}
    out = {}
    for m in methods:
        used = settings.for_method(m)  # only what the map depends on (LRP's γ only with the γ composite)
        if used:
            out[f"{method_label(m)} settings"] = ", ".join(f"{specs[k].label} {v if v != '' else 'default'}" for k, v in used.items())
    return out
