"""Write example_notebooks/02..05 (without outputs). Run: python scripts/make_notebooks.py"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

OUT = Path(__file__).resolve().parents[1] / "example_notebooks"


def nb(cells: list[tuple[str, str]]) -> nbf.NotebookNode:
    book = nbf.v4.new_notebook()
    book.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return book


SHOW = '''from IPython.display import Image, display
from saliency_widget.viz import render as R

def show_maps(maps, titles, sign="absolute"):
    """Show (C, H, W) maps side by side as one PNG."""
    panels = []
    for m in maps:
        rm = R.render_map(m.detach().cpu().numpy(), sign=sign)
        panels.append(rm.rgb if rm.rgb is not None else R.message_panel(rm.message, (128, 128)))
    display(Image(R.to_png(R.compose(panels, titles, height=160))))'''

NOTEBOOKS = {
    "02_relu_rules.ipynb": [
        ("md", "# 02 · Three ReLU rules: why does DeconvNet apply a ReLU on the way back?\n\n"
               "*The question (seed 000):* the forward feature map is already positive after the ReLU, so why does "
               "DeconvNet (Zeiler & Fergus 2014) apply a ReLU again when going back to the input?\n\n"
               "*The answer:* what goes back is not the feature map but the **signal** `R` coming down from above, "
               "and `R` can be negative. Gradient, DeconvNet and Guided Backprop are the same backward pass except "
               "at each ReLU (forward input `x`, incoming signal `R`):\n\n"
               "| method | passes back |\n|---|---|\n| gradient | `R * (x > 0)` |\n| deconvnet | `relu(R)` |\n| guided backprop | `R * (x > 0) * (R > 0)` |"),
        ("code", "from saliency_widget.classroom.explorers import relu_rules_explorer\n\n"
                 "explorer = relu_rules_explorer()  # seed 000's example; edit x and R and watch the colours\nexplorer"),
        ("md", "The numbers in the explorer come from the engine's own rule objects. The same worked example, in code:"),
        ("code", "import torch\nimport saliency_widget as sw\n\n"
                 "x = torch.tensor([[1., -2.], [-4., 5.]])\nR = torch.tensor([[-2., -2.], [4., 8.]])\n"
                 "for rule in ['gradient', 'deconvnet', 'guided_backprop']:\n    print(f'{rule:16s}', sw.relu_backward(x, R, rule).tolist())"),
        ("md", "## On a real network\n\nThe bundled model (trained on shapes in clutter, offline) on a two-object scene. "
               "Deconvnet ignores the forward mask, so its map is less specific to the input; guided backprop keeps "
               "both masks and gives the crispest picture."),
        ("code", "from saliency_widget.models import shapes_cnn\nfrom saliency_widget.data import load_sample\n\n"
                 "model = shapes_cnn()\nweights = model.saliency_weights\n"
                 "x = weights.transforms()(load_sample('shapes_star_square')).unsqueeze(0)\n"
                 "ex = sw.Explainer(model, x)          # one forward pass serves all three\n"
                 "probs = ex.probabilities[0]\nprint({c: round(float(p), 3) for c, p in zip(weights.meta['categories'], probs)})"),
        ("code", SHOW + "\n\nmethods = ['gradient', 'deconvnet', 'guided_backprop']\n"
                 "show_maps([ex.saliency(None, m)[0] for m in methods], methods)"),
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
    ],
    "03_transposed_convolution.ipynb": [
        ("md", "# 03 · Transposed convolution: the gradient of a convolution, not its inverse\n\n"
               "*Seed 002:* `ConvTranspose2d(Conv2d(x)) != x`, so how can a deconvnet 'invert' a layer? It does not: a "
               "transposed convolution multiplies by `Cᵀ`, the transpose of the convolution's matrix `C`, which is "
               "exactly how the gradient of the convolution with respect to its input is computed.\n\n"
               "*Seed 003:* FCN's 'deconvolution' layers are backwards-strided convolutions: zeros inserted between "
               "input pixels, then an ordinary convolution; uneven overlap makes checkerboard artifacts."),
        ("code", "from saliency_widget.classroom.explorers import transposed_conv_explorer\n\n"
                 "tc = transposed_conv_explorer()  # defaults: seed 003's TensorFlow example\ntc"),
        ("md", "## Seed 003's TensorFlow example, exactly\n\n`tf.nn.conv2d_transpose` of `[[1,2],[3,4]]` with a 3×3 kernel of ones, "
               "stride 2, padding 'SAME':"),
        ("code", "import torch\nfrom saliency_widget.classroom import conv_transpose2d_tf, tf_same_padding\n\n"
                 "out = conv_transpose2d_tf(torch.tensor([[1., 2.], [3., 4.]]), torch.ones(3, 3), stride=2, padding='same')\nprint(out)\n"
                 "assert out.tolist() == [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]]\n"
                 "print('TF pads (before, after) =', tf_same_padding(4, 3, 2), '- the odd pixel goes after, unlike PyTorch')"),
        ("md", "## The transposed convolution is the input-gradient (seed 002)"),
        ("code", "import torch.nn.functional as F\nfrom saliency_widget.classroom import transposed_is_input_gradient, conv_matrix\n\n"
                 "torch.manual_seed(0)\nx = torch.randn(1, 2, 9, 9, dtype=torch.float64)\nw = torch.randn(4, 2, 3, 3, dtype=torch.float64)\n"
                 "g = torch.randn(1, 4, 4, 4, dtype=torch.float64)\n"
                 "autograd_grad, transposed = transposed_is_input_gradient(x, w, g, stride=2, padding=0)\n"
                 "print('max |difference| =', float((autograd_grad - transposed).abs().max()))\n\n"
                 "# and it is not the inverse: the snippet from seed 002\ni = torch.randn(1, 1, 10, 10)\nk = torch.randn(1, 1, 2, 2)\n"
                 "print('ct(c(i)) == i ?', torch.allclose(F.conv_transpose2d(F.conv2d(i, k), k), i))\n\n"
                 "C = conv_matrix((4, 4), torch.ones(2, 2))\nprint('C is', tuple(C.shape), '- so C.T maps 9 values back to 16, it cannot undo C')"),
        ("md", "## Checkerboard artifacts and FCN's bilinear upsampling"),
        ("code", "from saliency_widget.classroom import overlap_counts, bilinear_upsample\n\n"
                 "print('kernel 3, stride 2 (uneven):\\n', overlap_counts(3, 3, 2))\nprint('kernel 4, stride 2 (even):\\n', overlap_counts(3, 4, 2))\n"
                 "print(bilinear_upsample(torch.arange(1., 10.).view(3, 3), 2))"),
    ],
    "04_projections_top9.ipynb": [
        ("md", "# 04 · Zeiler-Fergus projections and top-9 grids\n\n"
               "A projection keeps one activation of a layer (its forward value), zeroes the rest, and sends it back to "
               "pixel space with the DeconvNet rule. Scanning a dataset for each filter's 9 strongest activations gives "
               "the paper's famous figure 2."),
        ("code", "import torch\nimport saliency_widget as sw\nfrom saliency_widget.models import shapes_cnn\nfrom saliency_widget.data import load_sample, ShapesDataset\n\n"
                 "model = shapes_cnn()\nweights = model.saliency_weights\n"
                 "x = weights.transforms()(load_sample('shapes_star')).unsqueeze(0)\n"
                 "for info in sw.layers(model, x)[:6]:\n    print(info.key, info.type, info.shape)"),
        ("code", SHOW + "\n\nex = sw.Explainer(model, x)\nlayer = 'features.relu4'\n"
                 "act = ex.activation(layer)[0]\nchannel = int(act.flatten(1).amax(1).argmax())\n"
                 "(y, xx), = ex.strongest(layer, channel)\nprint(f'strongest filter {channel} at ({y}, {xx}), receptive field', ex.receptive_field(layer, y, xx))\n"
                 "show_maps([ex.project(layer, channel, method=m)[0] for m in ['deconvnet', 'guided_backprop', 'gradient']],\n"
                 "          ['deconvnet', 'guided_backprop', 'gradient'], sign='signed')"),
        ("md", "## Top-9 per filter over 256 generated images (one pass, bounded memory)"),
        ("code", "from torch.utils.data import DataLoader\nfrom IPython.display import Image, display\n"
                 "from saliency_widget.analysis import top_activations\nfrom saliency_widget.viz.figures import topk_grid_png\n\n"
                 "loader = DataLoader(ShapesDataset(256, seed=2024), batch_size=64)\n"
                 "res = top_activations(model, loader, 'features.relu4', channels=[0, 5, 11], k=9, progress=False)\n"
                 "print(f'{res.images_seen} images in {res.seconds:.1f} s; kept {len(res.images)} images in memory')\n"
                 "for c in res.channels:\n    display(Image(topk_grid_png(res, c, weights.meta['mean'], weights.meta['std'])))"),
    ],
    "05_sanity_checks.ipynb": [
        ("md", "# 05 · Sanity checks for saliency maps (Adebayo et al. 2018)\n\n"
               "*Seed 004's story:* randomise a network's weights from the top layer down. A map that explains the "
               "model should change; Adebayo et al. found that Guided Backprop's maps barely change, while Gradient "
               "(and Grad-CAM) maps do. We reproduce it on the bundled model, on a deep copy (the model is untouched)."),
        ("code", "import torch\nfrom IPython.display import Image, display\nfrom saliency_widget.models import shapes_cnn\n"
                 "from saliency_widget.data import ShapesDataset\nfrom saliency_widget.analysis import sanity_check\n"
                 "from saliency_widget.viz.figures import sanity_plot_png, sanity_gallery_png\n\n"
                 "model = shapes_cnn()\nds = ShapesDataset(8, seed=123)\nx = torch.stack([ds[i][0] for i in range(8)])\n"
                 "results = [sanity_check(model, x, method=m) for m in ('gradient', 'guided_backprop')]\n"
                 "for r in results:\n    print(r.method)\n    print(r.table())"),
        ("code", "display(Image(sanity_plot_png(results, 'spearman_abs')))\ndisplay(Image(sanity_plot_png(results, 'ssim')))"),
        ("md", "The maps of one image, from the trained model (left) to fully randomised (right):"),
        ("code", "for r in results:\n    print(r.method)\n    display(Image(sanity_gallery_png(r, image=0)))"),
        ("md", "Gradient's map loses its resemblance as soon as the top layer is random; Guided Backprop's stays close "
               "until the lowest layers are randomised too: it shows edges of the input more than what the classifier "
               "uses. Use it to see what a filter responds to, not to explain a decision."),
        ("md", "## A second, independent metric: deletion and insertion curves (Petsiuk et al. 2018, RISE)\n\n"
               "Remove the pixels a map ranks highest first (*deletion*, down to zeros = the mean colour) or insert "
               "them into a blurred image (*insertion*), and track the class probability. A faithful map makes it "
               "fall fast (low deletion AUC) and rise fast (high insertion AUC); a random pixel order is the reference. "
               "Now score the maps of a copy whose **top two layers are randomised** (the first steps of the cascade "
               "above) on the *trained* model: a method whose randomised maps score like its trained maps does not "
               "depend on the weights it explains. (24 scenes here to keep the notebook quick; docs/analyses.md has "
               "200.)"),
        ("code", "from IPython.display import HTML\nfrom saliency_widget.analysis import faithfulness_vs_randomised\n"
                 "from saliency_widget.viz.tables import markdown_table_html\n\n"
                 "held_out = ShapesDataset(24, seed=4242)\nxh = torch.stack([held_out[i][0] for i in range(len(held_out))])\n"
                 "methods = ['gradient', 'deconvnet', 'guided_backprop', 'gradcam']\n"
                 "faith = faithfulness_vs_randomised(model, xh, methods, top=2, steps=10)\n"
                 "display(HTML(markdown_table_html(faith.table())))"),
        ("md", "The curves of one scene (solid colours: trained maps, the grey dashed line: random order):"),
        ("code", "from saliency_widget.analysis.faithfulness import RANDOM\nfrom saliency_widget.viz.curves import faithfulness_svgs\n\n"
                 "names = [*methods, RANDOM]\nfr = faith.fractions.tolist()\n"
                 "curves = {k: {m: faith.curve(k, m)[0].tolist() for m in names} for k in ('deletion', 'insertion')}\n"
                 "display(HTML(faithfulness_svgs(fr, curves['deletion'], curves['insertion'])))"),
        ("md", "Read the table by *insertion − deletion* (higher is better). Compare each method with its "
               "\"(top layers randomised)\" row: a method that explains the classifier should lose much of its score "
               "when the classifier is random. In the explorer, the analyses panel's **faithfulness** button draws these "
               "curves for the image and class on screen, next to the sanity check."),
    ],
}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nbf.write(nb(cells), OUT / name)
        print("wrote", OUT / name)
