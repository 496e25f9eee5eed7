"""pairs:, unpaired: and builtin:shapes pairs for image-to-image translation: layout checks,
partner matching, odd images, identical jitter on both halves of a pair, the tf.data pipeline."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from edgecnn.data.translation import (
    SHAPES_PALETTE,
    from_unit_range,
    load_translation_samples,
    same_jitter,
    to_unit_range,
    translation_dataset,
)
from edgecnn.errors import EdgeCNNError


def _pair_folder(root, rng):
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    for index, (height, width) in enumerate([(40, 60), (64, 64), (33, 17), (50, 50), (20, 90), (64, 48)]):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "A" / f"p{index}.png"), image)
        cv2.imwrite(str(root / "B" / f"p{index}.png"), 255 - image)
    cv2.imwrite(str(root / "A" / "gray.png"), rng.integers(0, 256, (30, 30), dtype=np.uint8))
    cv2.imwrite(str(root / "B" / "gray.png"), rng.integers(0, 65535, (30, 30, 4), dtype=np.uint16))  # RGBA, 16 bit
    cv2.imwrite(str(root / "A" / "only_in_a.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (root / "A" / "broken.png").write_bytes(b"not a png")
    (root / "B" / "broken.png").write_bytes(b"not a png either")
    (root / "B" / "notes.txt").write_text("ignored")


def test_pairs_match_by_name_and_skip_what_cannot_be_read(tmp_path, rng, caplog):
    _pair_folder(tmp_path, rng)
    with caplog.at_level(logging.WARNING, logger="edgecnn.data"):
        data = load_translation_samples(f"pairs:{tmp_path}", (32, 32, 3), "all")
    assert data.paired and data.names_a == data.names_b
    assert sorted(data.names_a) == sorted([f"p{i}.png" for i in range(6)] + ["gray.png"])
    assert data.a.shape == data.b.shape == (7, 32, 32, 3) and data.a.dtype == np.uint8
    messages = caplog.text
    assert "only_in_a.png" in messages and "broken.png" in messages
    # B is the negative of A, resized the same way: the pairing survived
    first = data.names_a.index("p1.png")  # 64x64 -> 32x32
    assert np.abs(data.b[first].astype(int) - (255 - data.a[first].astype(int))).max() <= 1
    train = load_translation_samples(f"pairs:{tmp_path}", (32, 32, 3), "train")
    val = load_translation_samples(f"pairs:{tmp_path}", (32, 32, 3), "val")
    assert not set(train.names_a) & set(val.names_a) and len(train.names_a) + len(val.names_a) == 7


def test_layout_errors_name_the_fix(tmp_path, rng):
    with pytest.raises(EdgeCNNError, match="needs an A/ and a B/ folder") as error:
        load_translation_samples(f"pairs:{tmp_path}", (32, 32, 3))
    assert "same names" in error.value.fix
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    cv2.imwrite(str(tmp_path / "A" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "B" / "y.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(EdgeCNNError, match="No file name appears in both") as error:
        load_translation_samples(f"pairs:{tmp_path}", (32, 32, 3))
    assert "unpaired:" in error.value.fix
    with pytest.raises(EdgeCNNError, match="does not provide image pairs"):
        load_translation_samples("builtin:digits", (32, 32, 3))


def test_unpaired_domains_load_independently(tmp_path, rng):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    for index in range(3):
        cv2.imwrite(str(tmp_path / "A" / f"horse{index}.jpg"), rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    for index in range(5):
        cv2.imwrite(str(tmp_path / "B" / f"zebra{index}.png"), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    data = load_translation_samples(f"unpaired:{tmp_path}", (16, 24, 1), "all")
    assert not data.paired and data.a.shape == (3, 16, 24, 1) and data.b.shape == (5, 16, 24, 1)
    batches = list(translation_dataset(data, batch_size=2, seed=1).take(1))
    a, b = (np.asarray(t) for t in batches[0])
    assert a.shape == (2, 16, 24, 1) and b.shape == (2, 16, 24, 1)


def test_jitter_is_identical_for_both_halves_of_a_pair(rng):
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = 255 - a
    moved = 0
    for trial in range(20):
        jittered_a, jittered_b = same_jitter([a, b], np.random.default_rng(trial), scale=0.2)
        assert jittered_a.shape == a.shape
        assert np.array_equal(jittered_b, 255 - jittered_a)
        moved += not np.array_equal(jittered_a, a)
    assert moved >= 15  # it really jitters


def test_builtin_shapes_pairs_are_class_maps_and_photos():
    from edgecnn.data.segmentation import load_shapes_semantic

    data = load_translation_samples("builtin:shapes", (128, 128, 3), "val", limit=4)
    semantic = load_shapes_semantic((128, 128, 3), "val", 4).masks
    assert data.paired and data.a.shape == data.b.shape == (4, 128, 128, 3)
    assert np.array_equal(data.a, SHAPES_PALETTE[semantic])  # same generator, same seed: the same scenes
    assert len({tuple(c) for c in data.a.reshape(-1, 3)}) <= len(SHAPES_PALETTE)


def test_pipeline_batches_pairs_in_the_tanh_range():
    data = load_translation_samples("builtin:shapes", (64, 64, 3), "val", limit=8)
    dataset = translation_dataset(data, batch_size=4, seed=0)
    assert int(dataset.cardinality()) == 2
    a, b = (np.asarray(t) for t in next(iter(dataset)))
    assert a.shape == b.shape == (4, 64, 64, 3) and a.min() >= -1 and a.max() <= 1
    # the class-map colours survive the nearest-neighbour jitter: every A pixel is a palette colour
    assert {tuple(c) for c in from_unit_range(a).reshape(-1, 3)} <= {tuple(c) for c in SHAPES_PALETTE}
    assert np.array_equal(from_unit_range(to_unit_range(data.b)), data.b)
