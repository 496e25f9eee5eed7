"""builtin:shapes and `edgecnn data shapes`: deterministic, valid COCO, consistent masks."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from edgecnn.cli.main import main
from edgecnn.data.shapes import CLASSES, generate_sample, write_shapes


def _digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes(tmp_path):
    write_shapes(tmp_path / "a", num=6, size=64, seed=3)
    write_shapes(tmp_path / "b", num=6, size=64, seed=3)
    write_shapes(tmp_path / "c", num=6, size=64, seed=4)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_instances_are_visible_parts_and_agree_with_the_semantic_mask():
    rng = np.random.default_rng(0)
    occluded = 0
    for _ in range(40):
        sample = generate_sample(rng, 96)
        union = np.zeros((96, 96), bool)
        for instance in sample.instances:
            assert not (union & instance.mask).any()  # visible parts never overlap
            union |= instance.mask
            assert (sample.semantic[instance.mask] == instance.class_id + 1).all()
            x, y, w, h = instance.bbox
            ys, xs = np.nonzero(instance.mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
        assert ((sample.semantic > 0) == union).all()
        occluded += len(sample.instances) >= 2
    assert occluded >= 5  # scenes with several objects exist


def test_each_class_has_its_geometry():
    """Rectangles have right angles (an earlier generator stretched after rotating and drew
    rhombi), polygons have their corner count, stars are concave, the rest convex."""
    from edgecnn.data.shapes import _shape_mask

    rng = np.random.default_rng(7)
    corners = {"rectangle": 4, "triangle": 3}
    for class_id, name in enumerate(CLASSES):
        for _ in range(10):
            mask = _shape_mask(rng, class_id, 256).astype(np.uint8)
            contour = max(cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0], key=cv2.contourArea)
            if cv2.boundingRect(contour)[0] == 0 or (cv2.boundingRect(contour)[0] + cv2.boundingRect(contour)[2]
                                                     >= 256) or min(cv2.boundingRect(contour)[1::2]) <= 0:
                continue  # cut by the image border
            (_, _), (width, height), _ = cv2.minAreaRect(contour)
            fill = mask.sum() / (width * height)
            if name == "rectangle":
                assert fill > 0.93, fill
            else:
                assert fill < 0.9, (name, fill)
            solidity = cv2.contourArea(contour) / cv2.contourArea(cv2.convexHull(contour))
            assert (solidity < 0.75) if name == "star" else (solidity > 0.9), (name, solidity)
            if name in corners:
                approximate = cv2.approxPolyDP(contour, 0.03 * cv2.arcLength(contour, True), True)
                assert len(approximate) == corners[name]


def test_touching_shapes_have_different_colours():
    rng = np.random.default_rng(1)
    for _ in range(300):  # the earlier generator gave 8 of 164 touching pairs closer than this
        sample = generate_sample(rng, 96)
        grown = [cv2.dilate(i.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) for i in sample.instances]
        for a, first in enumerate(sample.instances):
            for b, second in enumerate(sample.instances[a + 1:], start=a + 1):
                if (grown[a] & second.mask).any():
                    colour_a = sample.image[first.mask].astype(int).mean(axis=0)
                    colour_b = sample.image[second.mask].astype(int).mean(axis=0)
                    assert np.abs(colour_a - colour_b).sum() >= 90


def test_coco_file_loads_in_pycocotools_and_masks_match(tmp_path):
    from pycocotools.coco import COCO

    path = write_shapes(tmp_path, num=10, size=96, seed=1)
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert len(coco.getImgIds()) == 10 and len(coco.getAnnIds()) >= 10
    for annotation in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(annotation["image_id"])[0]
        semantic = cv2.imread(str(tmp_path / image["file_name"].replace("images/", "masks/")), cv2.IMREAD_UNCHANGED)
        mask = coco.annToMask(annotation).astype(bool)
        agreement = np.mean(semantic[mask] == annotation["category_id"])
        assert agreement > 0.9, (annotation["id"], agreement)  # polygons vs pixels differ only at edges
        assert abs(mask.sum() - annotation["area"]) <= 0.25 * annotation["area"] + 20


def test_data_shapes_command(tmp_path, capsys):
    assert main(["data", "shapes", "--out", str(tmp_path), "--num", "3", "--size", "64"]) == 0
    document = json.loads((tmp_path / "annotations.json").read_text())
    assert len(document["images"]) == 3
    names = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "masks").iterdir())  # also a valid masks: folder
    assert main(["data", "shapes", "--out", str(tmp_path), "--num", "0"]) == 2


@pytest.mark.parametrize("size", [32, 200])
def test_sizes(size):
    sample = generate_sample(np.random.default_rng(size), size)
    assert sample.image.shape == (size, size, 3) and sample.semantic.shape == (size, size)
