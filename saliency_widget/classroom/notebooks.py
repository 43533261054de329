"""The classroom notebooks (02 the three ReLU rules, 03 transposed convolution), as data.

One source for ``example_notebooks/02_*`` and ``03_*`` (written by ``scripts/make_notebooks.py``)
and for ``saliency-widget classroom``, which writes them into a folder and serves it with Voilà,
so an installed package (no repository checkout) can serve them too. Written as plain nbformat-4
JSON with no outputs; no Jupyter package is needed to write them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data.atomic import write_atomic

__all__ = ["SHOW", "CLASSROOM_NOTEBOOKS", "notebook_json", "write_classroom_notebooks"]

Cells = list[tuple[str, str]]

SHOW = '''from IPython.display import Image, display
from saliency_widget.viz import render as R

def show_maps(maps, titles, sign="absolute", height=160):
    """Show (C, H, W) maps side by side as one PNG, each panel `height` pixels tall."""
    panels = []
    for m in maps:
        rm = R.render_map(m.detach().cpu().numpy(), sign=sign)
        panels.append(rm.rgb if rm.rgb is not None else R.message_panel(rm.message, (128, 128)))
    display(Image(R.to_png(R.compose(panels, titles, height=height))))'''

RELU_RULES: Cells = [
    ("md", "# 02 · Three ReLU rules: why does DeconvNet apply a ReLU on the way back?\n\n"
           "*The question:* Zeiler & Fergus (2014, *Visualizing and Understanding Convolutional Networks*) send a "
           "feature map back to the pixels with a \"deconvnet\" that applies a ReLU at every ReLU layer. But the forward "
           "feature map is already positive after the ReLU, so why apply a ReLU again on the way back?\n\n"
           "*The answer:* what goes back is not the feature map but the **signal** `R` coming down from above, "
           "and `R` can be negative. Gradient, DeconvNet and Guided Backprop (Springenberg et al. 2015, *Striving for "
           "Simplicity*) are the same backward pass except at each ReLU (forward input `x`, incoming signal `R`):\n\n"
           "| method | passes back |\n|---|---|\n| gradient | `R * (x > 0)` |\n| deconvnet | `relu(R)` |\n| guided backprop | `R * (x > 0) * (R > 0)` |"),
    ("code", "from saliency_widget.classroom.explorers import relu_rules_explorer\n\n"
             "explorer = relu_rules_explorer()  # a 2x2 case where all three rules differ; edit x and R and watch the colours\nexplorer"),
    ("md", "The numbers in the explorer come from the engine's own rule objects. The same worked example, in code:"),
    ("code", "import torch\nimport saliency_widget as sw\n\n"
             "x = torch.tensor([[1., -2.], [-4., 5.]])\nR = torch.tensor([[-2., -2.], [4., 8.]])\n"
             "for rule in ['gradient', 'deconvnet', 'guided_backprop']:\n    print(f'{rule:16s}', sw.relu_backward(x, R, rule).tolist())"),
    ("md", "## On a real network: does the map depend on the class you ask about?\n\n"
           "The bundled model (trained on shapes in clutter, offline) on a scene with one star. We ask each method "
           "to explain the predicted class *and* the runner-up: a map that explains a decision should change with the "
           "class; a map that redraws the input does not."),
    ("code", "from saliency_widget.models import shapes_cnn\nfrom saliency_widget.data import load_sample\n\n"
             "model = shapes_cnn()\nweights = model.saliency_weights\nnames = weights.meta['categories']\n"
             "x = weights.transforms()(load_sample('shapes_star')).unsqueeze(0)\n"
             "ex = sw.Explainer(model, x)          # one forward pass serves every map below\n"
             "top2 = ex.probabilities[0].argsort(descending=True)[:2].tolist()\n"
             "print('predicted:', names[top2[0]], '| runner-up:', names[top2[1]])"),
    ("code", SHOW + "\n\nmethods = ['gradient', 'deconvnet', 'guided_backprop']\n"
             "for c in top2:  # large panels: the differences are in the fine structure\n"
             "    show_maps([ex.saliency(c, m)[0] for m in methods], [f'{m} for {names[c]}' for m in methods], height=300)"),
    ("md", "The number behind the pictures: the correlation between each method's map for the two classes "
           "(1 = the same map whichever class is asked about)."),
    ("code", "from saliency_widget.classroom.specificity import class_correlation\n\n"
             "corr = class_correlation(ex, tuple(top2), methods)\n"
             "for m, r in corr.items():\n    print(f'{m:16s} correlation between the {names[top2[0]]} and {names[top2[1]]} maps: {r:.2f}')"),
    ("md", "DeconvNet and guided backprop draw almost the same star whichever class is asked about: their "
           "pictures show the input's edges more than the evidence for a class (Nie, Zhang & Patel 2018 explain why). "
           "The gradient's map changes with the class. Try `load_sample('shapes_star_square')`: with two objects, the "
           "class you pick moves every map towards its object."),
    ("md", "## The pitfall other libraries fall into\n\nA model that calls `F.relu` (not an `nn.ReLU` module) gets plain "
           "gradients back from tools that hook modules. Our engine intercepts every ReLU form, so the rule changes:"),
    ("code", "import torch.nn as nn, torch.nn.functional as F\n\n"
             "class Functional(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
             "        self.c1, self.c2, self.fc = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Linear(8, 3)\n"
             "    def forward(self, x):\n        x = F.relu(self.c1(x))\n        x = self.c2(x).relu()\n"
             "        return self.fc(x.mean((2, 3)))\n\n"
             "torch.manual_seed(0)\nnet = Functional().eval()\nxx = torch.randn(1, 3, 16, 16)\n"
             "g = sw.saliency(net, xx, method='gradient')\ngb = sw.saliency(net, xx, method='guided_backprop')\n"
             "print('guided backprop differs from the gradient:', not torch.allclose(g, gb))"),
]

TRANSPOSED: Cells = [
    ("md", "# 03 · Transposed convolution: the gradient of a convolution, not its inverse\n\n"
           "*The question:* `ConvTranspose2d(Conv2d(x)) != x`, so how can Zeiler & Fergus's deconvnet 'invert' a layer? "
           "It does not: a transposed convolution multiplies by `Cᵀ`, the transpose of the convolution's matrix `C`, which "
           "is exactly how the gradient of the convolution with respect to its input is computed.\n\n"
           "*FCN's 'deconvolution' layers* (Long, Shelhamer & Darrell 2015, *Fully Convolutional Networks for Semantic "
           "Segmentation*) are backwards-strided convolutions: zeros inserted between input pixels, then an ordinary "
           "convolution. Uneven overlap makes checkerboard artifacts (Odena, Dumoulin & Olah 2016)."),
    ("code", "from saliency_widget.classroom.explorers import transposed_conv_explorer\n\n"
             "tc = transposed_conv_explorer()  # defaults: TensorFlow's conv2d_transpose example below; hover the output\ntc"),
    ("md", "## TensorFlow's `conv2d_transpose`, exactly\n\n`tf.nn.conv2d_transpose` of `[[1,2],[3,4]]` with a 3×3 kernel of ones, "
           "stride 2, padding 'SAME':"),
    ("code", "import torch\nfrom saliency_widget.classroom import conv_transpose2d_tf, tf_same_padding\n\n"
             "out = conv_transpose2d_tf(torch.tensor([[1., 2.], [3., 4.]]), torch.ones(3, 3), stride=2, padding='same')\nprint(out)\n"
             "assert out.tolist() == [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]]\n"
             "print('TF pads (before, after) =', tf_same_padding(4, 3, 2), '- the odd pixel goes after, unlike PyTorch')"),
    ("md", "## The transposed convolution is the input-gradient"),
    ("code", "import torch.nn.functional as F\nfrom saliency_widget.classroom import transposed_is_input_gradient, conv_matrix\n\n"
             "torch.manual_seed(0)\nx = torch.randn(1, 2, 9, 9, dtype=torch.float64)\nw = torch.randn(4, 2, 3, 3, dtype=torch.float64)\n"
             "g = torch.randn(1, 4, 4, 4, dtype=torch.float64)\n"
             "autograd_grad, transposed = transposed_is_input_gradient(x, w, g, stride=2, padding=0)\n"
             "print('max |difference| =', float((autograd_grad - transposed).abs().max()))\n\n"
             "# and it is not the inverse: conv_transpose(conv(i)) is not i\ni = torch.randn(1, 1, 10, 10)\nk = torch.randn(1, 1, 2, 2)\n"
             "print('ct(c(i)) == i ?', torch.allclose(F.conv_transpose2d(F.conv2d(i, k), k), i))\n\n"
             "C = conv_matrix((4, 4), torch.ones(2, 2))\nprint('C is', tuple(C.shape), '- so C.T maps 9 values back to 16, it cannot undo C')"),
    ("md", "## Checkerboard artifacts and FCN's bilinear upsampling"),
    ("code", "from saliency_widget.classroom import overlap_counts, bilinear_upsample\n\n"
             "print('kernel 3, stride 2 (uneven):\\n', overlap_counts(3, 3, 2))\nprint('kernel 4, stride 2 (even):\\n', overlap_counts(3, 4, 2))\n"
             "print(bilinear_upsample(torch.arange(1., 10.).view(3, 3), 2))"),
]

CLASSROOM_NOTEBOOKS: dict[str, Cells] = {
    "02_relu_rules.ipynb": RELU_RULES,
    "03_transposed_convolution.ipynb": TRANSPOSED,
}
"""File name -> cells (``("md" | "code", source)``) of each classroom notebook."""


def notebook_json(cells: Cells) -> str:
    """An nbformat-4 notebook (python3 kernel, no outputs, stable cell ids) as JSON text."""
    out = []
    for n, (kind, src) in enumerate(cells):
        cell: dict[str, object] = {"cell_type": "markdown" if kind == "md" else "code", "id": f"cell-{n}", "metadata": {}, "source": src.splitlines(keepends=True)}
        if kind != "md":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    nb = {
        "cells": out,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as nbformat writes it


def write_classroom_notebooks(folder: Path) -> list[Path]:
    """Write the classroom notebooks into ``folder`` (created if missing); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, cells in CLASSROOM_NOTEBOOKS.items():
        p = folder / name
        write_atomic(p, notebook_json(cells))
        paths.append(p)
    return paths
