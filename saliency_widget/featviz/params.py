"""Image parametrisations: what the optimiser changes, and how that becomes an RGB image in [0, 1].

``"pixel"``
    One free value per pixel and colour, through a sigmoid: ``x = sigmoid(p)``.
``"fourier"``
    Olah et al. 2017 (Lucid / Lucent's ``fft_image`` + ``to_valid_rgb(decorrelate=True)``): the
    real and imaginary parts of the image's 2-D spectrum, scaled by ``1 / f`` so that all
    frequencies learn at the same speed, in a decorrelated colour space, then a sigmoid.
``"maco"``
    Fel et al. 2023 (MACO): only the phase of the spectrum is optimised; the magnitude is fixed
    (a natural-image ``1 / f`` spectrum, or the ``init`` image's own), the spatial image is
    standardised, colours recorrelated, then a sigmoid.

Every parametrisation keeps the batch on the first axis of its tensors, so that one image
can be frozen (``stop_at_probability``) by restoring its rows.
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError

__all__ = ["PARAMS", "COLOR_CORRELATION", "Param", "logit", "make_param", "spectrum_scale"]

PARAMS = ("pixel", "fourier", "maco")

# Lucid's colour correlation (square root of the ImageNet colour covariance, from its SVD),
# normalised so that its largest column has norm 1, as in Lucid and Lucent.
_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float64)
COLOR_CORRELATION: torch.Tensor = _SVD_SQRT / _SVD_SQRT.norm(dim=0).max()
"""``(3, 3)``: decorrelated colour ``z`` (per pixel, a row) -> RGB logits ``z @ COLOR_CORRELATION.T``."""

_EPS = 1e-4  # init images are clamped to [eps, 1 - eps] before the sigmoid's inverse
_FFT_SCALE = 4.0  # Lucid's "magic" divisor of the Fourier image
_MACO_GAIN = 2.0  # standardised MACO image -> sigmoid input: ~[0.12, 0.88] at +-1 std


def logit(x: torch.Tensor) -> torch.Tensor:
    """The sigmoid's inverse of images in [0, 1], clamped to [1e-4, 1 - 1e-4] first."""
    x = x.clamp(_EPS, 1.0 - _EPS)
    return torch.log(x) - torch.log1p(-x)


def _freqs(h: int, w: int) -> torch.Tensor:
    """``(h, w // 2 + 1)`` radial frequency of each rfft2 coefficient (cycles per pixel)."""
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> torch.Tensor:
    """Lucid's ``1 / max(f, 1 / max(h, w)) ** decay_power``, shape ``(h, w // 2 + 1)`` float64."""
    return 1.0 / _freqs(h, w).clamp_min(1.0 / max(h, w)) ** decay_power


def _decorrelate(z: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``(n, 3, H, W)`` colour-space ``z`` -> ``z`` with each pixel's colour vector multiplied by ``matrix.T``."""
    return torch.einsum("nchw,dc->ndhw", z, matrix)


class Param:
    """A batch of ``n`` parametrised images of size ``(h, w)``.

    Attributes
    ----------
    kind
        ``"pixel"``, ``"fourier"`` or ``"maco"``.
    tensors
        The leaf tensors the optimiser changes, each ``(n, ...)``.
    """

    def __init__(self, kind: str, tensors: list[torch.Tensor], h: int, w: int) -> None:
        self.kind = kind
        self.tensors = tensors
        self.h, self.w = h, w

    def image(self) -> torch.Tensor:
        """The images, ``(n, 3, h, w)`` in [0, 1], differentiable in :attr:`tensors`."""
        raise NotImplementedError


class PixelParam(Param):
    """``x = sigmoid(p)`` with ``p`` ``(n, 3, h, w)``."""

    def image(self) -> torch.Tensor:  # noqa: D102
        return torch.sigmoid(self.tensors[0])


class FourierParam(Param):
    """Lucid's Fourier image with decorrelated colour; the parameter is ``(n, 3, h, w // 2 + 1, 2)``."""

    def __init__(self, tensors: list[torch.Tensor], h: int, w: int, scale: torch.Tensor, color: torch.Tensor) -> None:
        super().__init__("fourier", tensors, h, w)
        self.scale = scale  # (h, w // 2 + 1, 1), real
        self.color = color

    def image(self) -> torch.Tensor:  # noqa: D102
        spec = torch.view_as_complex((self.scale * self.tensors[0]).contiguous())
        z = torch.fft.irfft2(spec, s=(self.h, self.w), norm="ortho") / _FFT_SCALE
        return torch.sigmoid(_decorrelate(z, self.color))


class MacoParam(Param):
    """MACO: phase ``(n, 3, h, w // 2 + 1)`` optimised under a fixed magnitude.

    The spatial image is standardised per image, then (to reproduce an ``init`` image exactly)
    given back that image's mean and standard deviation (0 and 1 for a random start).
    """

    def __init__(
        self, tensors: list[torch.Tensor], h: int, w: int, magnitude: torch.Tensor, shift: torch.Tensor, spread: torch.Tensor, color: torch.Tensor
    ) -> None:
        super().__init__("maco", tensors, h, w)
        self.magnitude, self.shift, self.spread, self.color = magnitude, shift, spread, color

    def image(self) -> torch.Tensor:  # noqa: D102
        phase = self.tensors[0]
        spec = torch.polar(self.magnitude.expand_as(phase), phase)
        z = torch.fft.irfft2(spec, s=(self.h, self.w), norm="ortho")
        mean = z.mean((1, 2, 3), keepdim=True)
        std = z.std((1, 2, 3), keepdim=True).clamp_min(1e-6)
        z = (z - mean) / std * self.spread + self.shift
        return torch.sigmoid(_MACO_GAIN * _decorrelate(z, self.color))


def make_param(
    kind: str,
    n: int,
    size: tuple[int, int],
    generators: list[torch.Generator],
    device: torch.device,
    dtype: torch.dtype,
    init: torch.Tensor | None = None,
) -> Param:
    """Build ``n`` images of ``kind``, random (one generator per image) or starting from ``init``.

    Parameters
    ----------
    kind
        One of :data:`PARAMS`.
    n
        Batch size.
    size
        ``(h, w)``.
    generators
        ``n`` CPU generators: image ``i`` draws its start from ``generators[i]``.
    device, dtype
        Where the parameters live.
    init
        ``(n, 3, h, w)`` images in [0, 1] to start from exactly, or None for a random start
        (Lucid's: small noise around grey; MACO: a uniform random phase).

    Returns
    -------
    Param
    """
    h, w = size
    spec_shape = (3, h, w // 2 + 1)

    def draw(shape: tuple[int, ...], uniform: bool = False) -> torch.Tensor:
        rows = [(torch.rand if uniform else torch.randn)(shape, generator=g, dtype=torch.float64) for g in generators]
        return torch.stack(rows)

    color = COLOR_CORRELATION.to(device=device, dtype=dtype)
    if kind == "pixel":
        p = logit(init.double()) if init is not None else 0.01 * draw((3, h, w))
        return PixelParam("pixel", [p.to(device=device, dtype=dtype).requires_grad_(True)], h, w)
    scale = spectrum_scale(h, w)
    if kind == "fourier":
        if init is None:
            p = 0.01 * draw((*spec_shape, 2))
        else:
            z = torch.einsum("nchw,dc->ndhw", logit(init.double()), torch.linalg.inv(COLOR_CORRELATION))
            p = torch.view_as_real(torch.fft.rfft2(z * _FFT_SCALE, norm="ortho")) / scale[..., None]
        return FourierParam([p.to(device=device, dtype=dtype).requires_grad_(True)], h, w, scale[..., None].to(device=device, dtype=dtype), color)
    if kind == "maco":
        if init is None:
            phase = (draw(spec_shape, uniform=True) * 2.0 - 1.0) * math.pi
            magnitude = scale.expand(1, *spec_shape)
            shift, spread = torch.zeros(n, 1, 1, 1, dtype=torch.float64), torch.ones(n, 1, 1, 1, dtype=torch.float64)
        else:
            z = torch.einsum("nchw,dc->ndhw", logit(init.double()) / _MACO_GAIN, torch.linalg.inv(COLOR_CORRELATION))
            shift, spread = z.mean((1, 2, 3), keepdim=True), z.std((1, 2, 3), keepdim=True).clamp_min(1e-6)
            spec = torch.fft.rfft2((z - shift) / spread, norm="ortho")
            magnitude, phase = spec.abs(), spec.angle()
        return MacoParam(
            [phase.to(device=device, dtype=dtype).requires_grad_(True)], h, w, magnitude.to(device=device, dtype=dtype),
            shift.to(device=device, dtype=dtype), spread.to(device=device, dtype=dtype), color,
        )  # fmt: skip
    raise InputError(f"unknown parametrisation param={kind!r}; expected one of {', '.join(map(repr, PARAMS))}")
