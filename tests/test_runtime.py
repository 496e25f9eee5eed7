"""The device runtime: TensorFlow-free pipelines, predict/benchmark, odd inputs, bad model files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgecnn
from edgecnn.cli.main import main


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory) -> Path:
    """A tiny classifier converted with metadata (labels: the digits)."""
    directory = tmp_path_factory.mktemp("runtime")
    edgecnn.create_model("test_vgg", input_shape=(32, 32, 3), num_classes=10).save(directory / "model.keras")
    out = directory / "model.tflite"
    (directory / "digits.txt").write_text("".join(f"{digit}\n" for digit in range(10)))
    assert main(["convert", str(directory / "model.keras"), "--target", "fp32", "--out", str(out),
                 "--calibration", "builtin:digits", "--samples", "2", "--labels", str(directory / "digits.txt")]) == 0
    return out


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "gray.png"), rng.integers(0, 256, (50, 70), dtype=np.uint8))
    cv2.imwrite(str(folder / "rgba.png"), rng.integers(0, 256, (33, 17, 4), dtype=np.uint8))
    cv2.imwrite(str(folder / "deep.png"), rng.integers(0, 65535, (40, 40, 3), dtype=np.uint16))
    cv2.imwrite(str(folder / "wide.jpg"), rng.integers(0, 256, (9, 301, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_runtime_pipeline_and_predict_import_no_tensorflow(classifier_file, odd_images, tmp_path):
    code = f"""
import sys
from edgecnn.runtime import Classifier
from edgecnn.cli.main import main
import numpy as np
result = Classifier({str(classifier_file)!r}, accelerator="cpu")(np.zeros((20, 30, 3), np.uint8))
assert len(result.top_k) == 5 and abs(sum(p.score for p in result.top_k) - 1) < 0.5
assert main(["predict", {str(classifier_file)!r}, {str(odd_images)!r}, "--out", {str(tmp_path / 'out')!r},
             "--accelerator", "cpu"]) == 0
heavy = [name for name in ("tensorflow", "tf_keras", "keras") if name in sys.modules]
assert not heavy, heavy
"""
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("target", ["fp32", "int8-io"])
def test_classifier_writes_its_input_in_place_with_the_reference_result(classifier_file, odd_images, tmp_path,
                                                                          target):
    """The Classifier resizes and normalizes straight into the model's input (an int8-io file
    through the byte table); the scores equal those of the reference batch run the plain way."""
    from dataclasses import replace

    from edgecnn.export.convert import convert
    from edgecnn.export.device_heads import add_device_heads
    from edgecnn.export.keras_io import load_model
    from edgecnn.export.metadata import write_metadata
    from edgecnn.runtime import Classifier
    from edgecnn.runtime.images import read_image, to_model_input
    from edgecnn.runtime.metadata import read_metadata

    data = classifier_file.read_bytes()
    if target != "fp32":
        model = load_model(classifier_file.parent / "model.keras")
        calibration = [np.random.default_rng(i).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32) for i in range(4)]
        calibration[0][0, 0, 0] = [0.0, 1.0, 0.5]  # the input range is exactly [0, 1]
        # as convert does: the softmax head on float outputs only, and metadata that says which
        flatbuffer, head = add_device_heads(convert(model, target, lambda: ([c] for c in calibration)),
                                            "classification")
        metadata = read_metadata(data)
        output = replace(metadata.outputs[0], kind="probabilities" if head else "logits")
        data = write_metadata(flatbuffer, replace(metadata, outputs=(output,)))
    classifier = Classifier(data, accelerator="cpu", top_k=10)
    assert classifier.runner.inputs[0].dtype == (np.int8 if target == "int8-io" else np.float32)
    assert (classifier._write_frame.table is not None) == (target == "int8-io")
    for path in sorted(odd_images.glob("*.*")):
        image = read_image(path)
        if image is None:
            continue
        got = classifier(image)
        batch = (to_model_input(image, classifier.size) * (255.0 * classifier.scale) + classifier.offset)[None]
        reference = classifier.runner(batch.astype(np.float32))[0].reshape(-1)
        expected = reference
        if classifier.logits:  # int8-io files keep logits; the others end in the softmax head
            expected = np.exp(reference - reference.max())
            expected /= expected.sum()
        assert np.allclose([p.score for p in got.top_k], np.sort(expected)[::-1], atol=1e-5), path.name


def test_predict_handles_odd_images_and_skips_unreadable(classifier_file, odd_images, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(classifier_file), str(odd_images), "--out", str(out), "--accelerator", "cpu"]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(Path(r["source"]).name for r in records) == ["deep.png", "gray.png", "rgba.png", "wide.jpg"]
    for record in records:
        assert record["backend"] == "litert" and record["accelerator"] == "cpu"
        assert [p["label"] for p in record["top_k"]] == [str(p["index"]) for p in record["top_k"]]
        assert record["top_k"][0]["score"] >= record["top_k"][-1]["score"]
    assert len(list(out.glob("*.png"))) == 4
    err = capsys.readouterr().err  # said on stderr, and the run goes on
    assert "skipping unreadable image" in err and "broken.png" in err


def test_predict_video(classifier_file, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(7):
        writer.write(np.full((48, 64, 3), index * 30, np.uint8))
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", str(classifier_file), str(video), "--out", str(out), "--accelerator", "cpu"]) == 0
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 7
    assert (out / "annotated.mp4").stat().st_size > 0


def test_without_litert_the_runtime_falls_back_with_the_same_results(classifier_file, odd_images):
    """A machine without ai-edge-litert (and, like this one, without tflite_runtime) gets the
    last backend, tf.lite, chosen on its own: same numbers, and the result says which ran."""
    code = f"""
import json, sys
import numpy as np
from edgecnn.runtime.engine import available_backends, load_engine
from edgecnn.runtime import Classifier
from edgecnn.runtime.images import read_image
litert = Classifier({str(classifier_file)!r}, accelerator="cpu")(read_image({str(odd_images / 'wide.jpg')!r}))
for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
fallback = Classifier({str(classifier_file)!r}, accelerator="cpu")
result = fallback(read_image({str(odd_images / 'wide.jpg')!r}))
print(json.dumps({{"backends": available_backends(), "backend": fallback.runner.backend,
                  "same": np.allclose([p.score for p in litert.top_k], [p.score for p in result.top_k], atol=1e-5),
                  "labels": [p.label for p in result.top_k] == [p.label for p in litert.top_k]}}))
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == {"backends": ["tf.lite"], "backend": "tf.lite", "same": True, "labels": True}


class _DroppingCamera:
    """Stands in for cv2.VideoCapture on a camera index: 3 frames, 2 failed reads, 2 frames,
    then nothing more (unplugged)."""

    script = [True, True, True, False, False, True, True]

    def __init__(self, source):
        self.source, self.reads, self.released = source, 0, False
        _DroppingCamera.last = self

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def read(self):
        ok = self.reads < len(self.script) and self.script[self.reads]
        self.reads += 1
        return ok, (np.full((48, 64, 3), 30 * self.reads, np.uint8) if ok else None)

    def release(self) -> None:
        self.released = True


def test_camera_that_drops_is_retried_then_predict_ends_cleanly(classifier_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cv2, "VideoCapture", _DroppingCamera)
    out = tmp_path / "out"
    assert main(["predict", str(classifier_file), "0", "--out", str(out), "--accelerator", "cpu"]) == 0
    monkeypatch.undo()  # the real VideoCapture again, to read the annotated video back
    camera = _DroppingCamera.last
    # the two failed reads were retried and the stream went on; after the last frame, 1 + 3 retries
    assert camera.source == 0 and camera.reads == 7 + 4 and camera.released
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2, 3, 4]
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert "stopped delivering frames" in capsys.readouterr().err


def test_camera_that_does_not_open_is_a_clear_error(classifier_file, tmp_path, capsys):
    assert main(["predict", str(classifier_file), "57", "--out", str(tmp_path / "out"), "--accelerator", "cpu"]) == 2
    assert "Could not open video source 57" in capsys.readouterr().err


def test_predict_reads_a_stream_url_and_refuses_a_dead_one(classifier_file, tmp_path, capsys):
    """A stream over HTTP (OpenCV's FFmpeg reader), served here from a local thread; a URL whose
    port refuses the connection is a clear error."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "served"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(7):
        writer.write(np.full((48, 64, 3), index * 30, np.uint8))
    writer.release()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        out = tmp_path / "out"
        assert main(["predict", str(classifier_file), url, "--out", str(out), "--accelerator", "cpu"]) == 0
        records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        assert [r["frame"] for r in records] == list(range(7)) and {r["source"] for r in records} == {url}
    finally:
        server.shutdown()
        server.server_close()
    dead = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"  # the server is gone: refused
    capsys.readouterr()
    assert main(["predict", str(classifier_file), dead, "--out", str(tmp_path / "dead"), "--accelerator", "cpu"]) == 2
    assert "Could not open video source" in capsys.readouterr().err


FRAMES_TO_INTERRUPT = 4000  # at 320x240, seconds of work: the run is still going when the signal comes


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C, and systemd stopping a service
def test_ctrl_c_in_predict_keeps_every_output_complete(classifier_file, tmp_path, stop):
    video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for index in range(FRAMES_TO_INTERRUPT):
        writer.write(np.full((240, 320, 3), index % 250, np.uint8))
    writer.release()
    out = tmp_path / "out"
    # as from a terminal: Ctrl-C raises KeyboardInterrupt (a test runner's worker may ignore
    # SIGINT, and an ignored signal is inherited across exec)
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv = ['edgecnn'] + sys.argv[1:]; runpy.run_module('edgecnn.cli.main', run_name='__main__')")
    process = subprocess.Popen([sys.executable, "-c", start, "predict", str(classifier_file), str(video),
                                "--out", str(out), "--accelerator", "cpu"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    predictions = out / "predictions.jsonl"
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and (
            not predictions.exists() or predictions.read_text().count("\n") < 20):
        time.sleep(0.01)
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    lines = predictions.read_text().splitlines()
    assert 20 <= len(lines) < FRAMES_TO_INTERRUPT
    assert [json.loads(line)["frame"] for line in lines] == list(range(len(lines)))  # every line whole
    annotated = cv2.VideoCapture(str(out / "annotated.mp4"))  # closed properly: it opens and has the frames
    frames_written = int(annotated.get(cv2.CAP_PROP_FRAME_COUNT))
    assert abs(frames_written - len(lines)) <= 1


def test_predict_on_the_gpu_accelerator(classifier_file, tmp_path, gpu):
    out = tmp_path / "out"
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), np.full((32, 32, 3), 128, np.uint8))
    assert main(["predict", str(classifier_file), str(image), "--out", str(out), "--accelerator", "gpu"]) == 0
    record = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert record["accelerator"] == "gpu" and record["backend"] == "litert-compiled-model"
    # the same scores as the CPU path
    cpu = edgecnn.runtime.Classifier(classifier_file, "cpu")(np.full((32, 32, 3), 128, np.uint8))
    assert [p["index"] for p in record["top_k"]][:2] == [p.index for p in cpu.top_k][:2]


def test_benchmark_json(classifier_file, capsys):
    assert main(["benchmark", str(classifier_file), "--accelerator", "cpu", "--runs", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"backend", "accelerator", "fully_accelerated", "invoke_ms", "pipeline_ms"} <= set(result)
    assert result["accelerator"] == "cpu" and result["invoke_ms"]["p50"] > 0
    assert result["pipeline_ms"]["p50"] >= result["invoke_ms"]["p50"] * 0.5
    coverage, memory = result["xnnpack"], result["memory"]
    assert 0 < coverage["delegated"] <= coverage["nodes"] and coverage["partitions"] >= 1
    assert memory["peak_rss_mb"] >= memory["rss_after_first_invoke_mb"] >= memory["rss_after_load_mb"] > 0
    assert memory["arena_mb"] > 0


def test_benchmark_memory_is_the_device_process_own(classifier_file):
    """Run from a large process (this one holds TensorFlow), `edgecnn benchmark` reports its own
    peak: getrusage's would carry the parent's resident memory at the fork."""
    import resource
    import subprocess
    import sys

    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    command = [sys.executable, "-m", "edgecnn.cli.main", "benchmark",
               str(classifier_file), "--accelerator", "cpu", "--runs", "3", "--json"]
    memory = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["memory"]
    assert parent_peak > 400, "the test needs a parent larger than the runtime"
    assert memory["peak_rss_mb"] < 300  # NumPy, OpenCV and LiteRT, no TensorFlow


def test_metadata_reader_needs_no_schema_and_survives_corrupt_files(classifier_file):
    """The runtime reads its metadata from the flatbuffer bytes itself (old Pi images have no
    ai-edge-litert schema module). On 400 corrupted copies it gives the metadata, None or an
    EdgeCNNError, never another exception."""
    from edgecnn.errors import EdgeCNNError
    from edgecnn.runtime.metadata import read_metadata

    data = classifier_file.read_bytes()
    metadata = read_metadata(data)
    assert metadata.task == "classification" and len(metadata.labels) == 10
    code = f"""
import sys
sys.modules["ai_edge_litert"] = None
from edgecnn.runtime.metadata import read_metadata
print(read_metadata(open({str(classifier_file)!r}, "rb").read()).task)
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip() == "classification", completed.stderr[-2000:]
    rng = np.random.default_rng(7)
    outcomes = {"metadata": 0, "none": 0, "error": 0}
    for index in range(400):
        damaged = bytearray(data)
        if index % 2:  # flip bytes, half of them in the first 4 KiB where the tables point from
            for position in rng.integers(0, 4096 if index % 4 == 1 else len(data), 8):
                damaged[position] ^= int(rng.integers(1, 256))
        else:  # truncate
            damaged = damaged[:int(rng.integers(8, len(data)))]
        try:
            found = read_metadata(bytes(damaged))
        except EdgeCNNError:
            outcomes["error"] += 1
            continue
        outcomes["none" if found is None else "metadata"] += 1
    assert outcomes["error"] > 0 and outcomes["metadata"] > 0, outcomes


def test_third_party_model_without_metadata_runs(tmp_path, capsys):
    from edgecnn._keras import keras
    from edgecnn.export.convert import convert

    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs)))
    path = tmp_path / "plain.tflite"
    path.write_bytes(convert(model))  # no edgecnn metadata
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((10, 10, 3), np.uint8))
    assert main(["predict", str(path), str(image), "--out", str(tmp_path / "o"), "--accelerator", "cpu"]) == 0
    assert main(["benchmark", str(path), "--accelerator", "cpu", "--runs", "3", "--json"]) == 0


@pytest.mark.parametrize("content", [b"", b"TFL3", b"hello world, not a model", b"\x00" * 64])
def test_non_models_are_refused_cleanly(tmp_path, content, capsys):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    assert main(["benchmark", str(path), "--accelerator", "cpu"]) == 2
    assert "not a TFLite" in capsys.readouterr().err


def _corrupt(data: bytes, rng: np.random.Generator, kind: int) -> bytes:
    corrupted = bytearray(data)
    if kind == 0:  # truncated
        return bytes(corrupted[: rng.integers(8, len(corrupted))])
    if kind == 1:  # bit flips in the header and tables
        for _ in range(rng.integers(1, 20)):
            corrupted[rng.integers(0, min(len(corrupted), 4096))] ^= 1 << int(rng.integers(0, 8))
    elif kind == 2:  # random bytes anywhere
        for _ in range(rng.integers(1, 50)):
            corrupted[rng.integers(0, len(corrupted))] = int(rng.integers(0, 256))
    else:  # a smashed run of offsets
        start = int(rng.integers(8, 200))
        corrupted[start : start + 8] = bytes(rng.integers(0, 256, 8).tolist())
    return bytes(corrupted)


@pytest.mark.parametrize("chunk", range(4))
def test_fuzzed_models_never_crash_the_process(classifier_file, tmp_path, chunk):
    """200 corrupted variants of a real model (50 per chunk), each in its own process: every
    one ends with exit 0 (the damage was harmless) or 2 (a clear error), never a signal."""
    data = classifier_file.read_bytes()
    rng = np.random.default_rng(chunk)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    outcomes = {}
    for index in range(50):
        path = tmp_path / f"fuzz{index}.tflite"
        path.write_bytes(_corrupt(data, rng, index % 4))
        result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "benchmark", str(path),
                                 "--accelerator", "cpu", "--runs", "1", "--warmup", "0"],
                                capture_output=True, text=True, env=env, timeout=120)
        outcomes[index] = result.returncode
        assert result.returncode in (0, 2), (index, result.returncode, result.stderr[-1500:])
        if result.returncode == 2:
            assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert sum(code == 2 for code in outcomes.values()) >= 25  # most corruptions are caught, not ignored


@pytest.mark.network
def test_base_install_alone_runs_predict(classifier_file, odd_images, tmp_path):
    """`pip install edgecnn` (no extras) in a fresh virtual environment: predict works and
    TensorFlow is not even installed."""
    repo = Path(__file__).parent.parent
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(repo)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    out = tmp_path / "out"
    result = subprocess.run([str(venv / "bin" / "edgecnn"), "predict", str(classifier_file), str(odd_images),
                             "--out", str(out), "--accelerator", "cpu"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 4
    # workstation commands say how to get the workstation install instead of failing on an import
    result = subprocess.run([str(venv / "bin" / "edgecnn"), "summary", "resnet18"], capture_output=True, text=True)
    assert result.returncode == 2 and 'pip install "edgecnn[train]"' in result.stderr


@pytest.mark.network
@pytest.mark.skipif(sys.version_info >= (3, 12), reason="tflite-runtime's last release (2.14) has wheels up to 3.11")
def test_old_pi_image_with_tflite_runtime_and_numpy_1_runs_predict(classifier_file, odd_images, tmp_path):
    """An old Raspberry Pi OS image: tflite-runtime 2.14 on NumPy 1, no ai-edge-litert and no
    TensorFlow. predict picks tflite_runtime, reads the metadata and gives LiteRT's labels."""
    repo = Path(__file__).parent.parent
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    for packages in (["tflite-runtime==2.14.0", "numpy<2", "opencv-python-headless"], ["--no-deps", str(repo)]):
        install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages],
                                 capture_output=True, text=True, timeout=900)
        assert install.returncode == 0, install.stderr[-3000:]
    missing = subprocess.run([str(python), "-c", "import ai_edge_litert"], capture_output=True, text=True)
    assert missing.returncode != 0
    results = {}
    for name, command in (("old", [str(venv / "bin" / "edgecnn")]), ("litert", [sys.executable, "-m",
                                                                               "edgecnn.cli.main"])):
        out = tmp_path / name
        result = subprocess.run([*command, "predict", str(classifier_file), str(odd_images), "--out", str(out),
                                 "--accelerator", "cpu"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        results[name] = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["backend"] for r in results["old"]} == {"tflite_runtime"}
    assert {r["backend"] for r in results["litert"]} == {"litert"}
    assert [[p["label"] for p in r["top_k"]][:2] for r in results["old"]] == \
        [[p["label"] for p in r["top_k"]][:2] for r in results["litert"]]


def test_benchmark_json_on_the_gpu_keeps_stdout_clean(classifier_file, gpu):
    """LiteRT's native GPU set-up logs to stdout; --json must still print exactly one document."""
    result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "benchmark", str(classifier_file),
                             "--accelerator", "gpu", "--runs", "3", "--json"], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)  # fails on any extra line
    assert document["accelerator"] == "gpu" and document["fully_accelerated"] is True


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler to build the test delegate")
def test_external_delegate_library_is_loaded_by_path(classifier_file, tmp_path, capsys):
    """--delegate hands a delegate .so (the way old Pi images get a GPU delegate for
    tflite_runtime) to the interpreter: a no-op delegate built here is really prepared, the
    results equal the plain CPU run, and files that are not delegates fail with a clear error."""
    import ctypes

    from edgecnn.runtime import Classifier, Runner

    library = tmp_path / "libnoop_delegate.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(Path(__file__).parent / "data" /
                                                                       "noop_delegate.c")], check=True)
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = classifier_file.read_bytes()
    runner = Runner(data, "cpu", delegate=library)
    assert ctypes.CDLL(str(library)).noop_prepared() >= 1  # the interpreter called the delegate's Prepare
    assert runner.accelerator == "delegate:libnoop_delegate.so"
    with_delegate = Classifier(data, runner=runner)(image).top_k
    plain = Classifier(data, accelerator="cpu")(image).top_k
    assert [(p.index, round(p.score, 5)) for p in with_delegate] == [(p.index, round(p.score, 5)) for p in plain]
    assert main(["benchmark", str(classifier_file), "--delegate", str(library), "--runs", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accelerator"] == "delegate:libnoop_delegate.so"
    not_delegate = tmp_path / "libnot.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(not_delegate), "-x", "c", "-"], input=b"int f(void){return 1;}",
                   check=True)
    for path, message in ((not_delegate, "not a TFLite external delegate"), (tmp_path / "missing.so", "does not exist"),
                          (classifier_file, "could not be opened as a shared library")):
        assert main(["benchmark", str(classifier_file), "--delegate", str(path), "--runs", "1"]) == 2
        assert message in capsys.readouterr().err


def test_inspect_describes_any_tflite_and_refuses_broken_ones(classifier_file, tmp_path, capsys):
    from edgecnn.errors import EdgeCNNError
    from edgecnn.export.convert import convert
    from edgecnn.export.keras_io import load_model
    from edgecnn.runtime import inspect_model

    assert main(["inspect", str(classifier_file), "--json", "--no-mediapipe"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"][0]["shape"] == [1, 32, 32, 3] and report["inputs"][0]["dtype"] == "float32"
    assert report["outputs"][0]["shape"] == [1, 10] and report["builtin_only"] and report["ops"]["CONV_2D"] >= 1
    assert report["ops"]["SOFTMAX"] == 1  # the device head: MediaPipe reads the output as scores
    assert report["edgecnn_metadata"]["task"] == "classification" and len(report["edgecnn_metadata"]["labels"]) == 10
    assert {"edgecnn", "TFLITE_METADATA"} <= set(report["metadata_entries"])
    (output,) = report["standard_metadata"]["subgraphs"][0]["outputs"]
    assert output["name"] == "probability" and output["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert report["associated_files"] == {"labels.txt": len("\n".join(report["edgecnn_metadata"]["labels"]))}
    assert report["signatures"] == ["serving_default"] and report["mediapipe"]["checked"] is False

    # a file without edgecnn metadata, with int8 input and output: read from the flatbuffer alone
    model = load_model(classifier_file.parent / "model.keras")
    calibration = [np.random.default_rng(i).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32) for i in range(4)]
    plain = convert(model, "int8-io", lambda: ([c] for c in calibration))
    described = inspect_model(plain)
    assert described["edgecnn_metadata"] is None and described["inputs"][0]["dtype"] == "int8"
    engine = edgecnn.runtime.load_engine(plain)
    assert described["inputs"][0]["quantization"]["scale"][0] == pytest.approx(engine.inputs[0].scale)
    assert described["inputs"][0]["quantization"]["zero_point"][0] == engine.inputs[0].zero_point
    assert main(["inspect", str(classifier_file)]) == 0
    assert "task classification" in capsys.readouterr().out

    broken = tmp_path / "broken.tflite"
    broken.write_bytes(classifier_file.read_bytes()[:3000])
    assert main(["inspect", str(broken)]) == 2
    assert "could not be read" in capsys.readouterr().err
    rng = np.random.default_rng(3)
    data = classifier_file.read_bytes()
    for index in range(60):  # truncated and bit-flipped copies: a description or a clear error, nothing else
        damaged = bytearray(data[:int(rng.integers(8, len(data)))] if index % 2 else data)
        if not index % 2:
            for position in rng.integers(0, 4096, 8):
                damaged[position] ^= int(rng.integers(1, 256))
        try:
            inspect_model(bytes(damaged))
        except EdgeCNNError:
            pass
