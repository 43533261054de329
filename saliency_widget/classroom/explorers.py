"""Classroom widgets: the three ReLU rules, and transposed convolution taken apart.

Every number shown comes from the engine (:func:`saliency_widget.engine.relu_backward`) or
from :mod:`saliency_widget.classroom.transposed`; nothing is re-implemented here.
"""

from __future__ import annotations

import html

import ipywidgets as W
import torch
import torch.nn.functional as F

from ..engine.rules import RULES, relu_backward
from ..errors import InputError, SaliencyError
from .grids import HOVER_CSS, grid_pair, heat_color, heatmap_html, matrix_html, parse_matrix
from .transposed import (
    bilinear_upsample,
    conv_matrix,
    conv_transpose2d_tf,
    crop_window,
    overlap_counts,
    placements,
    transposed_is_input_gradient,
    transposed_padding,
    zero_insertion,
)

__all__ = [
    "ReLURulesExplorer",
    "TransposedConvExplorer",
    "relu_rules_explorer",
    "transposed_conv_explorer",
    "parse_matrix",
    "matrix_html",
    "placement_popup",
]

# Colours of the cells: which mask zeroed an element of the backward result.
KEPT, FWD, SIG, BOTH = "#d9f2d9", "#d6e4ff", "#ffe2c2", "#e8d6ff"
LEGEND = (
    f'<span style="background:{KEPT};padding:0 6px">passed</span> '
    f'<span style="background:{FWD};padding:0 6px">zeroed by forward mask x&le;0</span> '
    f'<span style="background:{SIG};padding:0 6px">zeroed by signal mask R&le;0</span> '
    f'<span style="background:{BOTH};padding:0 6px">zeroed by both</span>'
)


class ReLURulesExplorer(W.VBox):
    """Edit a forward input ``x`` and an incoming signal ``R``; see the forward ReLU and the three backward rules.

    The question it answers: the feature map after a ReLU is already positive, so why does
    DeconvNet (Zeiler & Fergus 2014) apply a ReLU again on the way back? Because what goes back
    is the signal ``R``, which can be negative. The defaults are a 2×2 case where the three
    rules (gradient, DeconvNet, guided backprop of Springenberg et al. 2015) all differ:
    ``x = [[1, -2], [-4, 5]]``, ``R = [[-2, -2], [4, 8]]``.

    Attributes
    ----------
    results
        ``{"forward": relu(x), "gradient": ..., "deconvnet": ..., "guided_backprop": ...}``, float64 tensors.
    """

    def __init__(self, x: str = "1 -2; -4 5", signal: str = "-2 -2; 4 8") -> None:
        self.x_text = W.Textarea(value=x, description="x (forward input)", layout=W.Layout(width="320px", height="70px"), style={"description_width": "130px"})
        self.r_text = W.Textarea(value=signal, description="R (signal)", layout=W.Layout(width="320px", height="70px"), style={"description_width": "130px"})
        self.out = W.HTML()
        self.error = W.HTML()
        self.results: dict[str, torch.Tensor] = {}
        super().__init__([W.HTML("<b>Three ReLU rules</b>: the same backward pass, different at each ReLU"), W.HBox([self.x_text, self.r_text]), self.error, self.out])
        for w in (self.x_text, self.r_text):
            w.observe(lambda _change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        """Recompute from the text boxes; a bad entry shows one line of error, the widget stays usable."""
        try:
            x = parse_matrix(self.x_text.value)
            r = parse_matrix(self.r_text.value)
            if x.shape != r.shape:
                raise InputError(f"x is {tuple(x.shape)} but R is {tuple(r.shape)}; they must have the same shape")
        except SaliencyError as err:
            self.error.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        self.error.value = ""
        res = {"forward": torch.relu(x)}
        parts = [grid_pair(x, title="x"), grid_pair(res["forward"], title="relu(x) (forward)"), grid_pair(r, title="R (incoming)")]
        for name, rule in RULES.items():
            out = relu_backward(x, r, rule)
            res[name] = out
            colors = [[self._color(float(x[i, j]), float(r[i, j]), rule.forward_mask, rule.signal_mask) for j in range(x.shape[1])] for i in range(x.shape[0])]
            formula = {"gradient": "R·[x>0]", "deconvnet": "relu(R)", "guided_backprop": "R·[x>0]·[R>0]"}[name]
            parts.append(grid_pair(out, title=f"{name}: {formula}", colors=colors))
        self.results = res
        note = (
            "<p style='max-width:760px'>DeconvNet applies a ReLU on the way back although the forward output is "
            "already positive because what goes back is the <i>signal</i> R, not the feature map: R can be "
            "negative, and DeconvNet keeps only its positive part, ignoring where x was negative.</p>"
        )
        self.out.value = "".join(parts) + f"<div>{LEGEND}</div>" + note

    @staticmethod
    def _color(x: float, r: float, fwd: bool, sig: bool) -> str:
        by_fwd = fwd and not x > 0
        by_sig = sig and not r > 0
        if by_fwd and by_sig:
            return BOTH
        if by_fwd:
            return FWD
        if by_sig:
            return SIG
        return KEPT


def relu_rules_explorer(x: str = "1 -2; -4 5", signal: str = "-2 -2; 4 8") -> ReLURulesExplorer:
    """The ReLU-rule explorer widget (defaults: a 2×2 case where gradient, DeconvNet and guided backprop differ)."""
    return ReLURulesExplorer(x, signal)


def placement_popup(x: torch.Tensor, w: torch.Tensor, stride: int, offset: tuple[int, int], full_hw: tuple[int, int], rc: tuple[int, int]) -> str:
    """HTML for output element ``rc``: the sum of its kernel placements and where they lie in the full output.

    One line per placement ``x[i,j]·w[a,b]``, the total, and a small map of the full output with
    each contributing placement's footprint shaded and the element marked (``offset`` is the crop
    window's ``(top, left)``).
    """
    k = tuple(w.shape)
    terms = placements(tuple(x.shape), k, stride, offset, rc)  # type: ignore[arg-type]
    total = sum(float(x[i, j]) * float(w[a, b]) for i, j, a, b in terms)
    lines = [f"out[{rc[0]},{rc[1]}] = " + (" + ".join(f"x[{i},{j}]·w[{a},{b}]" for i, j, a, b in terms) or "0 (no placement reaches it)")]
    lines += [f"  x[{i},{j}]={float(x[i, j]):g} · w[{a},{b}]={float(w[a, b]):g}" for i, j, a, b in terms]
    lines.append(f"  = {total:g}")
    R, C = rc[0] + offset[0], rc[1] + offset[1]
    cover = torch.zeros(full_hw)
    for i, j, _a, _b in terms:
        cover[i * stride : i * stride + k[0], j * stride : j * stride + k[1]] += 1
    n = max(len(terms), 1)
    squares = "".join(
        f"<div style='width:12px;height:12px;background:{heat_color(float(cover[p, q]), n)};"
        + ("outline:2px solid #000;" if (p, q) == (R, C) else "")
        + "'></div>"
        for p in range(full_hw[0])
        for q in range(full_hw[1])
    )
    grid = f"<div style='display:grid;grid-template-columns:repeat({full_hw[1]},12px);gap:1px;margin-top:3px'>{squares}</div>"
    return "<br>".join(html.escape(line) for line in lines) + f"<div style='font-size:11px'>{len(terms)} placement(s) in the full output:</div>" + grid


class TransposedConvExplorer(W.VBox):
    """Controls for a single-channel transposed convolution and six views of it.

    (a) zero-insertion view of the input, with the crop from the full output to the kept size,
    (b) the matrix C of the forward convolution and Cᵀ (asymmetric TF "same" padding included),
    (c) the output (hover an element to see the kernel placements summed into it), (d) live checks
    (Cᵀ·g equals the input-gradient of the convolution; conv_transpose(conv(x)) differs from x),
    (e) overlap counts behind checkerboard artifacts (Odena et al. 2016), (f) FCN's
    bilinear-initialised upsampling (Long et al. 2015). Every grid has a heatmap beside its numbers.

    The defaults are the worked example of ``tf.nn.conv2d_transpose``: input [[1, 2], [3, 4]],
    3×3 ones kernel, stride 2, padding "same" (the odd padding pixel goes after).

    Attributes
    ----------
    output
        The last computed transposed-convolution output, ``(H, W)`` float64.
    matrix
        The matrix ``C`` of the forward convolution (``(h * w, H * W)``), empty when too large to show.
    crop
        ``(top, left, H, W)``: where the output sits in the full (unpadded) transposed convolution.
    checks
        ``{"gradient_max_abs_diff": float, "roundtrip_max_abs_diff": float, "matrix_max_abs_diff": float}``.
    """

    def __init__(self) -> None:
        st = {"description_width": "110px"}
        self.in_size = W.IntSlider(2, min=1, max=6, description="input size", style=st)
        self.kernel = W.IntSlider(3, min=1, max=5, description="kernel size", style=st)
        self.stride = W.IntSlider(2, min=1, max=4, description="stride", style=st)
        self.padding = W.Dropdown(options=[("TF same", "same"), ("TF valid", "valid"), ("0", 0), ("1", 1), ("2", 2)], value="same", description="padding", style=st)
        self.output_padding = W.IntSlider(0, min=0, max=3, description="output padding", style=st)
        self.weights = W.Dropdown(options=[("ones", "ones"), ("small integers (seeded)", "ints")], value="ones", description="kernel values", style=st)
        self.error = W.HTML()
        self.out = W.HTML()
        self.output = torch.zeros(0)
        self.matrix = torch.zeros(0)
        self.crop: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.checks: dict[str, float] = {}
        controls = [self.in_size, self.kernel, self.stride, self.padding, self.output_padding, self.weights]
        super().__init__([W.HTML("<b>Transposed convolution</b>: the gradient of a convolution, not its inverse"), W.HBox([W.VBox(controls[:3]), W.VBox(controls[3:])]), self.error, self.out])
        for c in controls:
            c.observe(lambda _change: self.update(), names="value")
        self.update()

    def _kernel(self) -> torch.Tensor:
        k = self.kernel.value
        if self.weights.value == "ones":
            return torch.ones(k, k, dtype=torch.float64)
        g = torch.Generator().manual_seed(0)
        return torch.randint(-2, 3, (k, k), generator=g).to(torch.float64)

    def update(self) -> None:
        """Recompute every view from the controls; invalid combinations give one line of error."""
        try:
            self._update()
        except Exception as err:  # an observer must never kill the widget
            self.error.value = f"<span style='color:#b00'>{html.escape(type(err).__name__ + ': ' + str(err))}</span>"

    def _update(self) -> None:
        n, k, s, pad, op = self.in_size.value, self.kernel.value, self.stride.value, self.padding.value, self.output_padding.value
        x = torch.arange(1, n * n + 1, dtype=torch.float64).view(n, n)
        w = self._kernel()
        try:
            if isinstance(pad, str):
                out = conv_transpose2d_tf(x, w, stride=s, padding="same" if pad == "same" else "valid")
                torch_pad, op = 0, 0
                op_note = " (output padding is not used with TF-style padding)" if self.output_padding.value else ""
            else:
                if op >= s:
                    raise InputError(f"output padding {op} must be smaller than the stride {s}")
                if pad > k - 1:
                    raise InputError(f"padding {pad} must be at most kernel size - 1 = {k - 1} for the zero-insertion view")
                out = F.conv_transpose2d(x[None, None], w[None, None], stride=s, padding=pad, output_padding=op)[0, 0]
                torch_pad = pad
                op_note = ""
        except (SaliencyError, RuntimeError) as err:
            self.error.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        self.error.value = ""
        self.output = out
        H, Wd = out.shape
        full_hw, crop = crop_window((n, n), (k, k), s, pad, op)
        self.crop = crop
        views = [HOVER_CSS]
        views.append(self._zero_insertion_view(x, w, s, full_hw, crop))
        views.append(self._matrix_view(x, w, s, pad, op, (H, Wd)))
        pops = [[placement_popup(x, w, s, crop[:2], full_hw, (r, c)) for c in range(Wd)] for r in range(H)]
        views.append(
            "<h4>(c) output <span style='font-weight:normal'>(hover an element: the kernel placements added into it)</span></h4>"
            + matrix_html(out, title=f"{H}×{Wd}{op_note}", pops=pops)
            + heatmap_html(out, title="heatmap")
        )
        views.append(self._checks_view(w, s, torch_pad, k, H, Wd))
        counts = overlap_counts(4, k, s)
        views.append(
            "<h4>(e) checkerboard artifacts</h4>"
            f"<p>Uniform 4×4 input, kernel {k}, stride {s}: kernel placements touching each output pixel. "
            + ("Kernel size divisible by the stride: even overlap in the interior." if k % s == 0 else "Kernel size not divisible by the stride: <b>uneven overlap</b>, a checkerboard.")
            + "</p>" + grid_pair(counts, title="overlap count")
        )
        f = max(2, s)
        ramp = torch.arange(1, 10, dtype=torch.float64).view(3, 3)
        views.append("<h4>(f) FCN bilinear upsampling</h4>" + grid_pair(ramp, title="3×3 input") + grid_pair(bilinear_upsample(ramp, f), title=f"×{f} with a bilinear-initialised transposed conv"))
        self.out.value = "".join(views)

    @staticmethod
    def _zero_insertion_view(x: torch.Tensor, w: torch.Tensor, s: int, full_hw: tuple[int, int], crop: tuple[int, int, int, int]) -> str:
        """(a): zeros between and around the input, the full stride-1 result, and the crop kept from it."""
        k = w.shape[0]
        zi = zero_insertion(x, s, k, 0)
        # a stride-1 convolution with the flipped kernel over the zero-inserted input gives the full output
        full = F.conv2d(zi[None, None], w.flip(0, 1)[None, None])[0, 0]
        top, left, H, Wd = crop
        # a window past the full output (kernel smaller than the stride) reads zeros there
        shown = F.pad(full, (0, max(0, left + Wd - full_hw[1]), 0, max(0, top + H - full_hw[0])))
        return (
            "<h4>(a) zero-insertion view, then the crop</h4>"
            + grid_pair(x, title="input")
            + grid_pair(zi, title=f"{s - 1} zero(s) between pixels, {k - 1} around")
            + grid_pair(w.flip(0, 1), title="kernel, flipped")
            + grid_pair(shown, title=f"full output {full_hw[0]}×{full_hw[1]}: green box kept", outline=crop)
            + f"<p style='max-width:760px'>A stride-1 convolution of the zero-inserted input with the flipped kernel gives the "
            f"full output; the padding setting keeps rows {top}…{top + H - 1} and columns {left}…{left + Wd - 1} of it "
            + ("(grey cells are cropped off; TF's \"same\" crops the odd pixel at the bottom/right)." if (top, left, H, Wd) != (0, 0, *full_hw) else "(nothing is cropped).")
            + "</p>"
        )

    def _matrix_view(self, x: torch.Tensor, w: torch.Tensor, s: int, pad: object, op: int, out_hw: tuple[int, int]) -> str:
        """(b): C of the forward convolution over the output's size, with its (possibly asymmetric) padding, and Cᵀ."""
        H, Wd = out_hw
        if H * Wd > 64:
            self.matrix = torch.zeros(0)
            self.checks["matrix_max_abs_diff"] = float("nan")
            return "<h4>(b) matrices</h4><p>C has more than 64 columns here; make the input smaller to see it.</p>"
        pads = transposed_padding(tuple(x.shape), tuple(w.shape), s, pad, op)  # type: ignore[arg-type]
        C = conv_matrix((H, Wd), w, stride=s, padding=pads)
        self.matrix = C
        ct_x = (C.T @ x.flatten()).view(H, Wd)
        self.checks["matrix_max_abs_diff"] = float((ct_x - self.output).abs().max())
        (pt, pb), (pl, pr) = pads
        asym = " (asymmetric: TF puts the odd pixel after)" if (pt, pl) != (pb, pr) else ""
        return (
            "<h4>(b) matrix C of the convolution and Cᵀ</h4>"
            f"<p style='max-width:760px'>C is the convolution of a {H}×{Wd} image (flattened row by row) padded "
            f"top {pt}, bottom {pb}, left {pl}, right {pr}{asym}, stride {s}. Cᵀ·x, reshaped to {H}×{Wd}, is the output in (c): "
            f"max |difference| = {self.checks['matrix_max_abs_diff']:.1e}.</p>"
            + grid_pair(C, title=f"C: {C.shape[0]}×{C.shape[1]}")
            + grid_pair(C.T, title="Cᵀ")
        )

    def _checks_view(self, w: torch.Tensor, s: int, torch_pad: int, k: int, H: int, Wd: int) -> str:
        """(d): Cᵀ is the input-gradient (autograd), and it does not undo the convolution."""
        g = torch.Generator().manual_seed(1)
        # (the check's input must be at least as large as the kernel)
        H, Wd = max(H, k), max(Wd, k)
        xin = torch.randn(1, 1, H, Wd, generator=g, dtype=torch.float64)
        y = F.conv2d(xin, w[None, None], stride=s, padding=torch_pad)
        grad_out = torch.randn(y.shape, generator=g, dtype=torch.float64)
        ga, gt = transposed_is_input_gradient(xin, w[None, None], grad_out, stride=s, padding=torch_pad)
        diff_grad = float((ga - gt).abs().max())
        # output_padding restores the sizes a strided convolution maps onto the same output size
        op_rt = (H - ((y.shape[2] - 1) * s - 2 * torch_pad + k), Wd - ((y.shape[3] - 1) * s - 2 * torch_pad + k))
        rt = F.conv_transpose2d(y, w[None, None], stride=s, padding=torch_pad, output_padding=op_rt)
        diff_rt = float((rt - xin).abs().max())
        self.checks.update(gradient_max_abs_diff=diff_grad, roundtrip_max_abs_diff=diff_rt)
        ok_rt = "<b style='color:#080'>OK</b>" if diff_rt > 1e-6 else "<b style='color:#a60'>here it happens to be x</b>"
        # plain words, not emoji: they render in every font (a classroom PC may have no emoji font)
        ok = "<b style='color:#080'>OK</b>" if diff_grad < 1e-9 else "<b style='color:#b00'>FAILED</b>"
        return (
            "<h4>(d) live checks</h4>"
            f"<p>{ok} conv_transpose2d(g, w) equals the input-gradient of conv2d(x, w): max |difference| = {diff_grad:.1e}</p>"
            f"<p>{ok_rt} conv_transpose(conv(x)) is <b>not</b> x: max |difference| = {diff_rt:.3g}"
            " (a transposed convolution is Cᵀ, not C⁻¹)</p>"
        )


def transposed_conv_explorer() -> TransposedConvExplorer:
    """The transposed-convolution explorer widget (defaults: ``tf.nn.conv2d_transpose`` of [[1, 2], [3, 4]], 3×3 ones, stride 2, "same")."""
    return TransposedConvExplorer()
