"""The device's mask tools: pasting a Mask R-CNN box mask into the image, and COCO RLE written
without pycocotools (checked against pycocotools, which the workstation side has)."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.runtime.masks import decode_rle, encode_rle, paste_mask, run_lengths


@pytest.mark.parametrize("seed", range(6))
def test_rle_matches_pycocotools_both_ways(seed):
    from pycocotools import mask as coco_mask

    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 90, 2)
    mask = rng.uniform(size=(height, width)) < [0.0, 0.02, 0.5, 0.98, 1.0, 0.3][seed]
    if seed == 5:  # long runs: counts above 2 ** 10 and negative differences between them
        mask = np.zeros((300, 400), bool)
        mask[20:280, 30:370] = True
        mask[100:120, 50:60] = False
    reference = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    ours = encode_rle(mask)
    assert ours["counts"] == reference["counts"].decode() and ours["size"] == list(reference["size"])
    np.testing.assert_array_equal(decode_rle(ours), mask)
    np.testing.assert_array_equal(decode_rle({"size": ours["size"], "counts": run_lengths(mask)}), mask)


def test_a_bad_rle_is_refused_with_its_sizes():
    with pytest.raises(ValueError, match="cover 5 pixels, not the 2x3"):
        decode_rle({"size": [2, 3], "counts": [2, 3]})


def test_a_full_mask_pastes_to_exactly_its_box_and_a_half_mask_to_its_half():
    full = paste_mask(np.ones((28, 28), np.float32), (10, 20, 30, 40), (50, 60))
    expected = np.zeros((50, 60), bool)
    expected[20:40, 10:30] = True
    np.testing.assert_array_equal(full, expected)
    left_half = np.zeros((28, 28), np.float32)
    left_half[:, :14] = 1.0
    pasted = paste_mask(left_half, (0, 0, 56, 28), (28, 56))
    assert pasted[:, :27].all() and not pasted[:, 29:].any()  # the boundary falls at x = 28
    # a box past the image is clipped; a box outside it gives an empty mask
    assert paste_mask(np.ones((28, 28)), (50, 40, 80, 70), (50, 60)).sum() == 10 * 10
    assert not paste_mask(np.ones((28, 28)), (70, 0, 90, 10), (50, 60)).any()
