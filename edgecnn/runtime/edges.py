"""Edge drawings as edgecnn's edges -> photo generators see them (Pix2Pix's edges2shoes style):
black lines on white from Canny, drawn on each colour channel of the picture at the model's
input size. The workstation side makes its training pairs with the same function, so a device
that draws the edges of a camera frame feeds the generator what it was trained on."""

from __future__ import annotations

import numpy as np

# Canny's hysteresis thresholds on 0-255 channels: the shapes' sides pass, the background
# noise of builtin:shapes (up to 12 grey levels) does not
CANNY_THRESHOLDS = (60, 120)
# a picture whose pixels are all this close to black or white, and mostly white, is taken to be
# an edge drawing already (what canny_edges and `edgecnn data pairs --edges` write)
LINE_DRAWING_TOLERANCE = 32
LINE_DRAWING_WHITE_SHARE = 0.5


def canny_edges(photo: np.ndarray) -> np.ndarray:
    """The edges of a uint8 picture as black lines on white, in the picture's channel count.
    Canny runs on each colour channel (smoothed by a 3x3 Gaussian) and the edges are their
    union: on the grey picture alone, shapes as bright as their background (a cyan star on
    light grey) have no edge at all."""
    import cv2

    channels = photo[..., None] if photo.ndim == 2 else photo
    edges = np.zeros(channels.shape[:2], np.uint8)
    for index in range(channels.shape[-1]):
        smooth = cv2.GaussianBlur(np.ascontiguousarray(channels[..., index]), (3, 3), 0)
        edges |= cv2.Canny(smooth, CANNY_THRESHOLDS[0], CANNY_THRESHOLDS[1])
    return np.repeat((255 - edges)[..., None], channels.shape[-1], axis=-1)


def is_line_drawing(picture: np.ndarray) -> bool:
    """Whether a uint8 picture already is a black-on-white drawing (every pixel near black or
    near white, most of them white) rather than a photo whose edges are still to be drawn."""
    dark = picture <= LINE_DRAWING_TOLERANCE
    light = picture >= 255 - LINE_DRAWING_TOLERANCE
    return bool(np.all(dark | light) and light.all(axis=-1).mean() >= LINE_DRAWING_WHITE_SHARE)
