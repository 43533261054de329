"""The methods' settings the user can change: one frozen :class:`MethodSettings`, one field per setting.

Each field is declared once with :func:`~.spec.setting` (kind, default, valid range, label,
help, the methods it applies to and the engine option it becomes). The explorer's traits,
validators and controls, the compute (:meth:`MethodSettings.engine_options`), the memo keys and
the exports are generated from these declarations, as for :class:`~.options.DisplayOptions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..engine import LayerInfo, method_label
from ..engine.cam import CAM_METHODS
from ..engine.layouts import SPATIAL_LAYOUTS
from .spec import Spec, check_value, setting, specs_of

__all__ = [
    "BASELINES", "CAM_LAYER_METHODS", "MethodSettings", "baseline_tensor", "cam_layer_choices", "setting_specs", "settings_text",
]

#: Integrated Gradients' starting images offered in the explorer.
BASELINES: tuple[str, ...] = ("zeros", "black", "white", "blur")
#: The methods that read a CAM layer (``layer=``): every CAM and Guided Grad-CAM.
CAM_LAYER_METHODS: tuple[str, ...] = (*(m.name for m in CAM_METHODS), "guided_gradcam")


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

    def __post_init__(self) -> None:
        for spec in setting_specs(type(self)):
            value = getattr(self, spec.name)
            if not (spec.name == "cam_layer" and value == ""):  # "": the engine's default layer
                object.__setattr__(self, spec.name, check_value(spec, value))

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The setting names, in order."""
        return tuple(s.name for s in setting_specs(cls))

    def for_method(self, method: str) -> dict[str, Any]:
        """``{setting name: value}`` of the settings ``method`` reads (what a map of it depends on)."""
        return {s.name: getattr(self, s.name) for s in setting_specs(type(self)) if method in s.methods}

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
            The model's input normalisation (black and white are pixel values 0 and 1 before it).
        """
        out: dict[str, Any] = {}
        for s in setting_specs(type(self)):
            if method not in s.methods:
                continue
            value = getattr(self, s.name)
            if s.name == "cam_layer":
                value = value or None
            elif s.name == "ig_baseline":
                value = baseline_tensor(value, inputs, mean, std)
            out[s.engine] = value
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


def cam_layer_choices(layers: Sequence[LayerInfo]) -> list[tuple[str, str]]:
    """``(label, key)`` of every layer a CAM can read: a spatial layout with an ``h x w > 1`` grid, in forward order."""
    spatial = [i for i in layers if i.layout in SPATIAL_LAYOUTS and i.shape[1] * i.shape[2] > 1]
    return [(f"{i.key}  ({i.type}, {'x'.join(str(s) for s in i.shape)})", i.key) for i in spatial]


def settings_text(settings: MethodSettings, methods: Sequence[str]) -> dict[str, str]:
    """``{"<method label> settings": "samples 25, noise 0.15"}`` for each of ``methods`` that has settings (for reports)."""
    specs = {s.name: s for s in setting_specs(type(settings))}
    out = {}
    for m in methods:
        used = settings.for_method(m)
        if used:
            out[f"{method_label(m)} settings"] = ", ".join(f"{specs[k].label} {v if v != '' else 'default'}" for k, v in used.items())
    return out
