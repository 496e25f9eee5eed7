"""The field side of a device: predictions.jsonl that stays within its size cap however long a
service runs, and the camera service unit written for whoever installs it, checked by systemd's
own `systemd-analyze verify` (Debian's systemd package; CI requires it through
EDGECNN_REQUIRE_SYSTEMD=1, elsewhere the check is skipped with the reason)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgecnn
from edgecnn.cli.main import main
from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.records import JsonLines
from edgecnn.runtime.sources import Frame

REPO = Path(__file__).parent.parent
SERVICE = REPO / "deploy" / "raspberry-pi" / "service.sh"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deploy") / "classifier.tflite"
    edgecnn.convert(edgecnn.create_model("test_vgg", num_classes=5), "fp32", out=path, samples=1,
                    labels=[f"class {k}" for k in range(5)])
    return path


def _files(out: Path) -> list[Path]:
    return sorted(out.glob("predictions*.jsonl"))


def _whole_lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n"), path
    return [json.loads(line) for line in text.splitlines()]


def test_a_looping_camera_never_holds_more_than_the_cap_on_disk(classifier, tmp_path, monkeypatch):
    """`predict --rotate-mb` over a source that never ends (a camera, here a loop of one
    picture): at every frame the predictions files on disk stay within cap x (kept + 1) plus one
    line, every file is whole JSON lines, the newest frames are kept, and a restart (a service's)
    rotates the earlier file instead of overwriting it."""
    import edgecnn.runtime.sources as sources

    out, cap_mb, keep = tmp_path / "camera", 0.02, 2
    peak = {"bytes": 0}
    picture = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)

    def looping_camera(source: str):
        index = 0
        while True:
            peak["bytes"] = max(peak["bytes"], sum(p.stat().st_size for p in _files(out)))
            yield Frame(source, index, picture, is_video=True)
            index += 1

    monkeypatch.setattr(sources, "frames", looping_camera)
    frames = 400
    args = ["predict", str(classifier), "camera", "--out", str(out), "--no-annotated", "--accelerator", "cpu",
            "--rotate-mb", str(cap_mb), "--rotate-keep", str(keep), "--max-frames", str(frames)]
    assert main(args) == 0
    files = _files(out)
    assert [p.name for p in files] == ["predictions.1.jsonl", "predictions.2.jsonl", "predictions.jsonl"]
    records = {p.name: _whole_lines(p) for p in files}
    line = max(len(json.dumps(r)) + 1 for rows in records.values() for r in rows)
    assert frames * line > 3 * cap_mb * 1e6  # the run wrote far more than the cap holds
    assert peak["bytes"] <= cap_mb * 1e6 * (keep + 1) + line
    assert all(p.stat().st_size <= cap_mb * 1e6 for p in files)
    newest = [r["frame"] for name in ("predictions.2.jsonl", "predictions.1.jsonl", "predictions.jsonl")
              for r in records[name]]
    assert newest == list(range(frames - len(newest), frames))  # consecutive, ending at the last frame
    # a restarted service keeps what the last run wrote since its last rotation
    last = records["predictions.jsonl"]
    assert main([*args[:-1], "3"]) == 0
    assert _whole_lines(out / "predictions.1.jsonl") == last and len(_whole_lines(out / "predictions.jsonl")) == 3
    assert len(_files(out)) == 3


def test_without_a_cap_predictions_is_one_file_and_bad_caps_are_refused(tmp_path):
    with JsonLines(tmp_path / "p.jsonl") as log:
        for index in range(1000):
            log.write({"frame": index})
    assert len(_whole_lines(tmp_path / "p.jsonl")) == 1000 and _files(tmp_path) == []
    with pytest.raises(EdgeCNNError, match="--rotate-mb"):
        JsonLines(tmp_path / "q.jsonl", max_bytes=0)
    with pytest.raises(EdgeCNNError, match="--rotate-keep"):
        JsonLines(tmp_path / "q.jsonl", max_bytes=100, keep=-1)


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze is missing (Debian: apt install systemd)"
        if os.environ.get("EDGECNN_REQUIRE_SYSTEMD") == "1":
            pytest.fail(f"systemd required (EDGECNN_REQUIRE_SYSTEMD=1) but {reason}")
        pytest.skip(reason)
    return found


def test_the_service_is_written_for_the_installing_user_and_passes_systemd_verify(tmp_path):
    """service.sh writes the unit and camera.env for the user running it, with the venv and
    model paths given, rotation on and annotation off; systemd-analyze verify accepts the unit
    (it checks, among others, that the ExecStart program exists)."""
    analyze = _systemd_analyze()
    venv = Path(sys.executable).parent.parent  # a venv with bin/edgecnn, as install.sh makes
    assert (venv / "bin" / "edgecnn").exists()
    model = tmp_path / "models" / "detector int8.tflite"
    model.parent.mkdir()
    model.write_bytes(b"")
    env = {**os.environ, "EDGECNN_VENV": str(venv), "EDGECNN_UNIT_DIR": str(tmp_path / "unit"),
           "EDGECNN_CONFIG_DIR": str(tmp_path / "etc"), "EDGECNN_OUT": str(tmp_path / "runs")}
    refused = subprocess.run(["bash", str(SERVICE), str(model)], capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "space" in refused.stderr  # a path systemd would split
    model = model.rename(model.with_name("detector_int8.tflite"))
    written = subprocess.run(["bash", str(SERVICE), str(model), "picamera:1"], capture_output=True, text=True, env=env)
    assert written.returncode == 0, written.stderr
    unit = (tmp_path / "unit" / "edgecnn-camera.service").read_text()
    config = (tmp_path / "etc" / "camera.env").read_text()
    user = getpass.getuser()
    assert f"User={user}\n" in unit and f"ExecStart={venv}/bin/edgecnn predict " in unit
    assert f"EnvironmentFile={tmp_path}/etc/camera.env\n" in unit
    settings = dict(line.split("=", 1) for line in config.splitlines() if line and not line.startswith("#"))
    assert settings["MODEL"] == str(model) and settings["SOURCE"] == "picamera:1" and settings["OUT"] == str(tmp_path / "runs")
    assert "--no-annotated" in settings["OPTIONS"] and "--rotate-mb 10" in settings["OPTIONS"]
    if user != "pi":
        assert "pi" not in [word.strip("/") for text in (unit, config) for word in text.replace("/", " / ").split()]
    verified = subprocess.run([analyze, "verify", str(tmp_path / "unit" / "edgecnn-camera.service")],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "edgecnn-camera.service" not in verified.stdout + verified.stderr  # no complaint about our unit
    # a unit whose program does not exist is what verify refuses (the check above can fail)
    broken = tmp_path / "unit" / "broken.service"
    broken.write_text(unit.replace(f"ExecStart={venv}/bin/edgecnn", "ExecStart=/nonexistent/bin/edgecnn"))
    assert subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True).returncode != 0
