"""The Raspberry Pi camera source (``picamera`` / ``picamera:N``). No Pi camera exists here, so
Picamera2 is replaced by a stand-in module with its interface (configure, start,
capture_array, stop, close); what is tested is edgecnn's side: the source names, the RGB
format it asks for, that frames reach the pipeline as the very arrays Picamera2 returns, that
the camera is released, and the errors."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.sources import frames, picamera_index


class FakePicamera2:
    instances: list = []

    def __init__(self, camera: int = 0) -> None:
        if camera > 1:
            raise IndexError("list index out of range")  # what Picamera2 raises for a missing camera
        self.camera, self.started, self.closed, self.config = camera, False, False, None
        self.rng = np.random.default_rng(camera)
        self.returned: list[np.ndarray] = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict) -> dict:
        return {"main": dict(main)}

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, stream: str = "main") -> np.ndarray:
        width, height = self.config["main"]["size"]
        array = self.rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.returned.append(array)
        return array

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch):
    FakePicamera2.instances = []
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_source_names():
    assert picamera_index("picamera") == 0 and picamera_index("picamera:1") == 1
    assert picamera_index("picamera:x") is None and picamera_index("0") is None


def test_frames_are_picamera2s_own_rgb_arrays_and_the_camera_is_released(fake_picamera2):
    stream = frames("picamera:1")
    got = [next(stream) for _ in range(3)]
    stream.close()
    (camera,) = fake_picamera2.instances
    assert camera.config["main"]["format"] == "BGR888"  # Picamera2's name for [R, G, B] bytes
    assert all(frame.image is array for frame, array in zip(got, camera.returned))  # no copy
    assert [f.source for f in got] == ["picamera:1"] * 3 and [f.index for f in got] == [0, 1, 2]
    assert camera.closed and not camera.started


def test_missing_picamera2_and_missing_camera_are_clear_errors(fake_picamera2, monkeypatch):
    with pytest.raises(EdgeCNNError, match="needs Picamera2") as error:
        monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as where it is not installed
        next(frames("picamera"))
    assert "python3-picamera2" in str(error.value) and "--system-site-packages" in str(error.value)
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    with pytest.raises(EdgeCNNError, match="camera 3 could not be started"):
        next(frames("picamera:3"))


def test_predict_runs_on_the_picamera_source(fake_picamera2, tmp_path):
    """`edgecnn predict MODEL picamera --max-frames 2` in-process, with the stand-in camera."""
    import edgecnn
    from edgecnn.cli.main import main

    model = tmp_path / "classifier.tflite"
    edgecnn.convert(edgecnn.create_model("test_vgg", num_classes=3), "fp32", out=model, task="classification",
                    labels=["a", "b", "c"])
    out = tmp_path / "out"
    assert main(["predict", str(model), "picamera", "--out", str(out), "--max-frames", "2",
                 "--accelerator", "cpu"]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["source"] for r in records] == ["picamera:0", "picamera:0"]
    assert fake_picamera2.instances[0].closed and (out / "annotated.mp4").stat().st_size > 0
    # the camera service's form: predictions only
    quiet = tmp_path / "quiet"
    assert main(["predict", str(model), "picamera", "--out", str(quiet), "--max-frames", "3", "--accelerator", "cpu",
                 "--no-annotated"]) == 0
    assert len((quiet / "predictions.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in quiet.iterdir()) == ["predictions.jsonl"]
