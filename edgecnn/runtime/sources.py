"""Frames from an image file, a folder, a glob, a video file, a camera index / stream URL, or a
Raspberry Pi camera (``picamera`` or ``picamera:N``, through Picamera2). Images come out RGB
(uint8 or uint16, gray or colour, as stored); unreadable files are reported and skipped; a
camera that drops is retried, then the stream ends."""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.runtime.images import IMAGE_SUFFIXES, read_image
from edgecnn.errors import EdgeCNNError

log = logging.getLogger("edgecnn.sources")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


@dataclass
class Frame:
    source: str
    index: int
    image: np.ndarray  # RGB
    is_video: bool = False


def _image_files(source: str) -> list[Path] | None:
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if any(ch in source for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    return None


def _video(source: str | int, retries: int = 3, retry_delay: float = 0.2) -> Iterator[Frame]:
    """Frames of a video file, camera or stream. A camera or stream that stops delivering is
    read again ``retries`` times, waiting ``retry_delay`` x 1, 2, 3 ... seconds, before it ends."""
    import cv2

    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise EdgeCNNError(f"Could not open video source {source!r}.", "Check the file, camera index or URL.")
    index, failures = 0, 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                if isinstance(source, str) and Path(source).is_file():
                    break  # end of file
                failures += 1
                if failures > retries:
                    log.warning("camera %r stopped delivering frames; ending", source)
                    break
                time.sleep(retry_delay * failures)
                continue
            failures = 0
            yield Frame(str(source), index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), is_video=True)
            index += 1
    finally:
        capture.release()


PICAMERA = "picamera"
PICAMERA_SIZE = (640, 480)  # width, height of the frames asked of the sensor


def picamera_index(source: str) -> int | None:
    """The camera number of a ``picamera`` / ``picamera:N`` source (None: not one)."""
    name, colon, number = source.partition(":")
    if name != PICAMERA:
        return None
    if not colon:
        return 0
    return int(number) if number.isdigit() else None


def _picamera(camera: int, size: tuple[int, int] = PICAMERA_SIZE) -> Iterator[Frame]:
    """Frames of a Raspberry Pi camera through Picamera2. The sensor is asked for ``BGR888``,
    which Picamera2 hands over as [R, G, B] bytes (its names follow libcamera's little-endian
    words), so each frame goes to the pipeline's resize as it is: no colour conversion, no copy."""
    try:
        from picamera2 import Picamera2
    except ImportError as error:
        raise EdgeCNNError(
            f"Source '{PICAMERA}' needs Picamera2, which is not importable here.",
            "On Raspberry Pi OS: sudo apt install python3-picamera2, and make the venv with "
            "--system-site-packages so it sees it (deploy/raspberry-pi/install.sh does both). "
            "A USB camera is SOURCE 0, 1, ...") from error
    try:
        device = Picamera2(camera)
        device.configure(device.create_video_configuration(main={"format": "BGR888", "size": size}))
        device.start()
    except (RuntimeError, IndexError, OSError) as error:
        raise EdgeCNNError(f"Raspberry Pi camera {camera} could not be started ({error}).",
                           "Check the ribbon cable and `rpicam-hello --list-cameras`; only one program can use "
                           "the camera at a time.") from error
    index = 0
    try:
        while True:
            yield Frame(f"{PICAMERA}:{camera}", index, device.capture_array("main"), is_video=True)
            index += 1
    finally:
        device.stop()
        device.close()


def frames(source: str) -> Iterator[Frame]:
    camera = picamera_index(source)
    if camera is not None:
        yield from _picamera(camera)
        return
    if source.isdigit():
        yield from _video(int(source))
        return
    if source.startswith(("rtsp://", "http://", "https://")) or Path(source).suffix.lower() in VIDEO_SUFFIXES:
        if not source.startswith(("rtsp", "http")) and not Path(source).is_file():
            raise EdgeCNNError(f"Video file '{source}' does not exist.")
        yield from _video(source)
        return
    files = _image_files(source)
    if files is None:
        raise EdgeCNNError(f"'{source}' is not an image, folder, glob, video file, camera index or picamera[:N].",
                           f"Images: {', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))}.")
    if not files:
        raise EdgeCNNError(f"No images found for '{source}'.")
    for index, path in enumerate(files):
        image = read_image(path)
        if image is None:
            log.warning("skipping unreadable image %s", path)
            continue
        yield Frame(str(path), index, image)
