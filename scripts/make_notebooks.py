"""Write example_notebooks/02..05 (without outputs). Run: python scripts/make_notebooks.py"""

from __future__ import annotations

from pathlib import Path

from saliency_widget.classroom.notebooks import CLASSROOM_NOTEBOOKS, SHOW, notebook_json

OUT = Path(__file__).resolve().parents[1] / "example_notebooks"


NOTEBOOKS = {
    **CLASSROOM_NOTEBOOKS,  # 02 and 03: saliency_widget/classroom/notebooks.py, also served by `saliency-widget classroom`
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
               "*The question* (Adebayo et al. 2018, *Sanity Checks for Saliency Maps*): does a map explain the model, or "
               "only the image? Randomise a network's weights from the top layer down. A map that explains the "
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
        (OUT / name).write_text(notebook_json(cells), encoding="utf-8")
        print("wrote", OUT / name)
