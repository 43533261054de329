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
from .transposed import (
    bilinear_upsample,
    conv_matrix,
    conv_transpose2d_tf,
    overlap_counts,
    transposed_is_input_gradient,
    zero_insertion,
)

__all__ = ["ReLURulesExplorer", "TransposedConvExplorer", "relu_rules_explorer", "transposed_conv_explorer", "parse_matrix", "matrix_html"]

# Colours of the cells: which mask zeroed an element of the backward result.
KEPT, FWD, SIG, BOTH = "#d9f2d9", "#d6e4ff", "#ffe2c2", "#e8d6ff"
LEGEND = (
    f'<span style="background:{KEPT};padding:0 6px">passed</span> '
    f'<span style="background:{FWD};padding:0 6px">zeroed by forward mask x&le;0</span> '
    f'<span style="background:{SIG};padding:0 6px">zeroed by signal mask R&le;0</span> '
    f'<span style="background:{BOTH};padding:0 6px">zeroed by both</span>'
)


def parse_matrix(text: str) -> torch.Tensor:
    """Parse ``"1 -2; -4 5"`` (rows split by ``;`` or newlines) into a float64 ``(rows, cols)`` tensor."""
    rows = [r for r in (part.strip() for part in text.replace("\n", ";").split(";")) if r]
    try:
        vals = [[float(v) for v in r.replace(",", " ").split()] for r in rows]
    except ValueError as err:
        raise InputError(f"cannot read {text!r} as a matrix of numbers ({err}); write rows like '1 -2; -4 5'") from None
    if not vals or any(len(r) != len(vals[0]) for r in vals) or not vals[0]:
        raise InputError(f"{text!r} is not a rectangular matrix; every row needs the same number of values")
    return torch.tensor(vals, dtype=torch.float64)


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e4 else f"{v:.2e}"


def matrix_html(t: torch.Tensor, colors: list[list[str]] | None = None, title: str = "") -> str:
    """A small matrix as an HTML table (values escaped), optionally with per-cell background colours."""
    t = t.detach().cpu()
    cells = []
    for i in range(t.shape[0]):
        row = "".join(
            f'<td style="border:1px solid #bbb;padding:2px 6px;text-align:right;'
            f'background:{colors[i][j] if colors else "#fff"}">{html.escape(_fmt(float(t[i, j])))}</td>'
            for j in range(t.shape[1])
        )
        cells.append(f"<tr>{row}</tr>")
    cap = f"<div style='font-weight:600;margin-bottom:2px'>{html.escape(title)}</div>" if title else ""
    return f"<div style='display:inline-block;margin:4px 10px;vertical-align:top'>{cap}<table style='border-collapse:collapse;font-family:monospace'>{''.join(cells)}</table></div>"


class ReLURulesExplorer(W.VBox):
    """Edit a forward input ``x`` and an incoming signal ``R``; see the forward ReLU and the three backward rules.

    Defaults are seed 000's worked example: ``x = [[1, -2], [-4, 5]]``, ``R = [[-2, -2], [4, 8]]``.

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
        parts = [matrix_html(x, title="x"), matrix_html(res["forward"], title="relu(x) (forward)"), matrix_html(r, title="R (incoming)")]
        for name, rule in RULES.items():
            out = relu_backward(x, r, rule)
            res[name] = out
            colors = [[self._color(float(x[i, j]), float(r[i, j]), rule.forward_mask, rule.signal_mask) for j in range(x.shape[1])] for i in range(x.shape[0])]
            formula = {"gradient": "R·[x>0]", "deconvnet": "relu(R)", "guided_backprop": "R·[x>0]·[R>0]"}[name]
            parts.append(matrix_html(out, colors, title=f"{name}: {formula}"))
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
    """The ReLU-rule explorer widget (defaults: seed 000's example)."""
    return ReLURulesExplorer(x, signal)


class TransposedConvExplorer(W.VBox):
    """Controls for a single-channel transposed convolution and six views of it.

    (a) zero-insertion view of the input, (b) the matrix C of the forward convolution and Cᵀ,
    (c) the output, (d) live checks (Cᵀ·g equals the input-gradient of the convolution; and
    conv_transpose(conv(x)) differs from x), (e) overlap counts behind checkerboard artifacts,
    (f) FCN's bilinear-initialised upsampling.

    Defaults reproduce seed 003's TensorFlow example (input [[1, 2], [3, 4]], 3×3 ones kernel,
    stride 2, padding "same").

    Attributes
    ----------
    output
        The last computed transposed-convolution output, ``(H, W)`` float64.
    checks
        ``{"gradient_max_abs_diff": float, "roundtrip_max_abs_diff": float}``.
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
                torch_pad = 0
                op_note = " (output padding is not used with TF-style padding)" if op else ""
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
        views = []
        # (a) zero insertion: a stride-1 convolution with the flipped kernel over this gives the full output
        zi = zero_insertion(x, s, k, 0)
        views.append("<h4>(a) zero-insertion view</h4>" + matrix_html(x, title="input") + matrix_html(zi, title=f"{s - 1} zero(s) between pixels, {k - 1} around") + matrix_html(w, title="kernel"))
        # (b) C and its transpose, for the forward convolution whose input has the output's size
        fwd_in = (H + 2 * torch_pad, Wd + 2 * torch_pad) if not isinstance(pad, str) else (H, Wd)
        if fwd_in[0] * fwd_in[1] <= 64:
            C = conv_matrix((H, Wd), w, stride=s, padding=torch_pad) if not isinstance(pad, str) else None
            if C is not None:
                views.append("<h4>(b) matrix C of the convolution and Cᵀ</h4>" + matrix_html(C, title=f"C: {C.shape[0]}×{C.shape[1]}") + matrix_html(C.T, title="Cᵀ"))
            else:
                views.append("<h4>(b) matrices</h4><p>C is shown for integer padding (TF padding is asymmetric).</p>")
        else:
            views.append("<h4>(b) matrices</h4><p>C has more than 64 columns here; make the input smaller to see it.</p>")
        views.append("<h4>(c) output</h4>" + matrix_html(out, title=f"{H}×{Wd}{op_note}"))
        # (d) live checks on random tensors of these shapes
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
        self.checks = {"gradient_max_abs_diff": diff_grad, "roundtrip_max_abs_diff": diff_rt}
        ok_rt = "<b style='color:#080'>OK</b>" if diff_rt > 1e-6 else "<b style='color:#a60'>here it happens to be x</b>"
        # plain words, not emoji: they render in every font (a classroom PC may have no emoji font)
        ok = "<b style='color:#080'>OK</b>" if diff_grad < 1e-9 else "<b style='color:#b00'>FAILED</b>"
        views.append(
            "<h4>(d) live checks</h4>"
            f"<p>{ok} conv_transpose2d(g, w) equals the input-gradient of conv2d(x, w): max |difference| = {diff_grad:.1e}</p>"
            f"<p>{ok_rt} conv_transpose(conv(x)) is <b>not</b> x: max |difference| = {diff_rt:.3g}"
            " (a transposed convolution is Cᵀ, not C⁻¹)</p>"
        )
        counts = overlap_counts(4, k, s)
        views.append(
            "<h4>(e) checkerboard artifacts</h4>"
            f"<p>Uniform 4×4 input, kernel {k}, stride {s}: kernel placements touching each output pixel. "
            + ("Kernel size divisible by the stride: even overlap in the interior." if k % s == 0 else "Kernel size not divisible by the stride: <b>uneven overlap</b>, a checkerboard.")
            + "</p>" + matrix_html(counts, title="overlap count")
        )
        f = max(2, s)
        ramp = torch.arange(1, 10, dtype=torch.float64).view(3, 3)
        views.append("<h4>(f) FCN bilinear upsampling</h4>" + matrix_html(ramp, title="3×3 input") + matrix_html(bilinear_upsample(ramp, f), title=f"×{f} with a bilinear-initialised transposed conv"))
        self.out.value = "".join(views)


def transposed_conv_explorer() -> TransposedConvExplorer:
    """The transposed-convolution explorer widget (defaults: seed 003's TensorFlow example)."""
    return TransposedConvExplorer()

