"""The shipped sample images: present, small, licensed, reproducible from the generator, listed on a typo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from saliency_widget.data import CLASSES, SAMPLES, load_sample, render_shape_scene, sample_images
from saliency_widget.data.samples import SHAPE_SCENES
from saliency_widget.errors import InputError


def test_sample_images_exist_and_open() -> None:
    paths = sample_images()
    assert set(paths) == set(SAMPLES)
    for name, path in paths.items():
        assert path.is_file(), name
        assert path.stat().st_size < 64_000  # kept small on purpose
        img = load_sample(name)
        assert img.mode == "RGB" and max(img.size) <= 256


def test_every_sample_has_a_licence_entry() -> None:
    licences = (next(iter(sample_images().values())).parent / "LICENSES.md").read_text()
    for info in SAMPLES.values():
        assert f"`{info.filename}`" in licences


@pytest.mark.parametrize("name", sorted(SHAPE_SCENES))
def test_shipped_shape_scenes_are_reproducible(name: str) -> None:
    scene = render_shape_scene(name)
    np.testing.assert_array_equal(np.asarray(load_sample(name)), scene.image)
    assert [CLASSES[k] for k in scene.labels] == list(SHAPE_SCENES[name][1])


def test_unknown_sample_lists_valid_names() -> None:
    with pytest.raises(InputError, match="'cat'") as info:
        load_sample("dog")
    assert "'dog'" in str(info.value) and "shapes_star" in str(info.value)


def test_loaded_sample_is_independent_of_file() -> None:
    img = load_sample("cat")
    assert isinstance(img, Image.Image)
    img.load()  # already loaded: the file handle is closed, so this must not fail
