"""One reader of model specs: ``load_model("shapes" | "torchvision:NAME" | "timm:NAME" | "hf:PATH" | "py:module:factory")``.

Every command's ``--model`` and every ``model=None`` default of the public API go through
:func:`load_model`, so a new kind of spec lands here once. Nothing is ever downloaded:
pretrained weights come from the local caches (torch hub, Hugging Face), and ``:none``
asks for random initialisation explicitly.
"""

from __future__ import annotations

import importlib

from torch import nn

from ..errors import InputError, ModelError

__all__ = ["DEFAULT_MODEL", "MODEL_SPECS", "load_model"]

DEFAULT_MODEL = "shapes"
"""The spec of the model used when none is given: the bundled shapes CNN (offline, pretrained)."""

MODEL_SPECS = (
    "'shapes[:none]' (bundled, pretrained; none = random)",
    "'torchvision:NAME[:WEIGHTS|none|random]' (e.g. torchvision:resnet18; weights from the torch hub cache, none or random = random)",
    "'timm:NAME[:none|random]' (weights from the Hugging Face cache, none or random = random)",
    "'hf:PATH' (a local folder or a cached Hugging Face model id)",
    "'py:module:factory' (a function returning the model)",
)
"""The valid forms of a model spec, as listed in error messages and ``--help``."""


def _bad(spec: str, why: str) -> InputError:
    return InputError(f"model {spec!r} {why}; valid forms: {', '.join(MODEL_SPECS)}")


def _name_and_weights(spec: str, rest: str) -> tuple[str, str | None]:
    name, _, weights = rest.partition(":")
    if not name:
        raise _bad(spec, "names no model")
    if weights.lower() == "random":  # a synonym of "none": random initialisation
        weights = "none"
    return name, (weights or None)


def _torchvision(spec: str, rest: str) -> nn.Module:
    from .torchvision_models import torchvision_model

    name, weights = _name_and_weights(spec, rest)
    if weights is not None and weights.lower() == "none":
        return torchvision_model(name, weights=None)
    try:
        return torchvision_model(name, weights=weights or "DEFAULT", download=False)
    except InputError as err:
        raise InputError(f"model {spec!r}: {err} (torchvision:{name}:none gives random weights)") from err


def _timm(spec: str, rest: str) -> nn.Module:
    name, weights = _name_and_weights(spec, rest)
    try:
        import timm
    except ImportError as err:
        raise InputError(f"model {spec!r} needs timm (pip install timm)") from err
    if name not in timm.list_models():
        raise InputError(f"model {spec!r}: {name!r} is not a timm model (timm.list_models() lists them)")
    if weights is not None and weights.lower() != "none":
        raise _bad(spec, f"has weights {weights!r}: timm models take only ':none' (random weights)")
    model = timm.create_model(name, pretrained=False)
    if weights is None:  # pretrained, from the local Hugging Face cache only
        from huggingface_hub import try_to_load_from_cache

        cfg = getattr(model, "pretrained_cfg", {}) or {}
        repo = cfg.get("hf_hub_id")
        files = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else ["model.safetensors", "pytorch_model.bin"]
        found = [p for p in (try_to_load_from_cache(repo, f) for f in files) if isinstance(p, str)] if repo else []
        if not found:
            raise InputError(
                f"model {spec!r}: the pretrained weights of {name!r} are not in the Hugging Face cache "
                f"({repo or 'no hub id'}); nothing is downloaded here. Copy them into the cache, or use timm:{name}:none for random weights"
            )
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": found[0]})
    return model.eval()


def _hf(spec: str, path: str) -> nn.Module:
    if not path:
        raise _bad(spec, "names no model folder or id")
    try:
        from transformers import AutoModelForImageClassification
    except ImportError as err:
        raise InputError(f"model {spec!r} needs transformers (pip install transformers)") from err
    try:
        model = AutoModelForImageClassification.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"model {spec!r}: no image classifier at {path!r} in a local folder or the Hugging Face cache ({first})") from err
    return model.eval()


def _py(spec: str, rest: str) -> nn.Module:
    mod, _, fn = rest.rpartition(":")
    if not mod or not fn:
        raise _bad(spec, "must be py:module:factory, e.g. py:mypkg.nets:build")
    try:
        factory = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as err:
        raise InputError(f"model {spec!r}: {err}") from err
    model = factory()
    if not isinstance(model, nn.Module):
        raise InputError(f"model {spec!r}: {mod}.{fn}() returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


_KINDS = {"torchvision": _torchvision, "timm": _timm, "hf": _hf, "py": _py}


def load_model(spec: str | nn.Module | None = None) -> nn.Module:
    """The model a spec names (the reader of ``--model`` and of every ``model=None`` default).

    Parameters
    ----------
    spec
        None: the default (:data:`DEFAULT_MODEL`, the bundled shapes CNN). An ``nn.Module``: returned
        as it is (never changed). A string, one of :data:`MODEL_SPECS`:

        - ``"shapes"``: :func:`~saliency_widget.models.shapes_cnn` (pretrained, offline;
          ``"shapes:none"``: random weights);
        - ``"torchvision:NAME"``, ``"torchvision:NAME:WEIGHTS"``, ``"torchvision:NAME:none"``: a
          torchvision classifier with its default (or the named) weights from the torch hub cache,
          or random weights (``:random`` is the same as ``:none``); see
          :func:`~saliency_widget.models.torchvision_model`;
        - ``"timm:NAME"``, ``"timm:NAME:none"``: ``timm.create_model`` with the pretrained weights
          from the Hugging Face cache, or random weights;
        - ``"hf:PATH"``: ``transformers.AutoModelForImageClassification.from_pretrained(PATH,
          local_files_only=True)`` (a folder or a cached model id);
        - ``"py:module:factory"``: ``module.factory()``, which must return an ``nn.Module``.

    Returns
    -------
    torch.nn.Module
        The model, in eval mode for the built-in kinds (a factory's model is returned as built).

    Raises
    ------
    ModelError
        ``spec`` is neither a module nor a string of a known form (the message lists the forms).
    InputError
        One line naming the bad spec: a missing name, a model or weights that do not exist or are
        not cached, a missing optional package, a factory that returns no module.
    """
    if spec is None:
        spec = DEFAULT_MODEL
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, str):
        raise ModelError(f"model: expected a torch.nn.Module or a model spec, got {type(spec).__name__}; valid specs: {', '.join(MODEL_SPECS)}")
    text = spec.strip()
    if text in ("shapes", "shapes:none", "shapes:random"):
        from .shapes_cnn import shapes_cnn

        return shapes_cnn(pretrained=text == "shapes")
    kind, sep, rest = text.partition(":")
    if not sep or kind not in _KINDS:
        raise ModelError(f"model {spec!r} is not valid: expected a torch.nn.Module, got str, which is not a model spec either; valid specs: {', '.join(MODEL_SPECS)}")
    return _KINDS[kind](spec, rest.strip())
