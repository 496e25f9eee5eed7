"""`edgecnn convert`: every target, the report, metadata inside the file, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import edgecnn
from edgecnn._keras import keras
from edgecnn.cli.main import main
from edgecnn.data.images import load_classification_samples
from edgecnn.runtime import load_engine
from edgecnn.runtime.metadata import read_metadata
from conftest import skip_gpu_check

SIZE = (32, 32, 3)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A tiny VGG trained for a few epochs on scikit-learn's digits: real, confident outputs, so
    int8 top-1 agreement measures quantization and not the noise of an untrained model."""
    x, y, _ = load_classification_samples("builtin:digits", SIZE, split="train")
    x_val, y_val, _ = load_classification_samples("builtin:digits", SIZE, split="val")
    keras.utils.set_random_seed(0)
    model = edgecnn.create_model("test_vgg", input_shape=SIZE, num_classes=10, dropout=0.0)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_val, y_val, verbose=0)[1]
    assert accuracy > 0.9, accuracy
    path = tmp_path_factory.mktemp("digits") / "digits_vgg.keras"
    model.save(path)
    return path, model


def _convert(capsys, model_path, target, out_dir, *extra):
    out = out_dir / f"model_{target}.tflite"
    report_path = out_dir / f"report_{target}.json"
    code = main(["convert", str(model_path), "--target", target, "--out", str(out), "--report", str(report_path),
                 "--calibration", "builtin:digits", "--samples", "32", "--json", *extra])
    captured = capsys.readouterr()
    return code, out, json.loads(report_path.read_text()) if report_path.exists() else None, captured


@pytest.mark.parametrize("target", ["fp32", "fp16", "dynamic", "int8", "int8-io"])
def test_convert_every_target_with_report_and_metadata(capsys, tmp_path, digits_model, target, gpu_runner):
    model_path, _ = digits_model
    code, out, report, captured = _convert(capsys, model_path, target, tmp_path)
    assert code == 0, captured.err
    assert json.loads(captured.out) == report  # --json prints exactly the report
    for field in ("target", "size_bytes", "gzip_bytes", "ops", "builtin_only", "gpu", "parity", "latency_ms",
                  "consistency"):
        assert field in report, field
    assert report["target"] == target and report["builtin_only"] is True
    assert report["size_bytes"] == out.stat().st_size and report["gzip_bytes"] < report["size_bytes"]
    assert set(report["gpu"]) >= {"compatible", "fully_accelerated", "unsupported_ops"}
    assert report["latency_ms"] > 0
    coverage = report["xnnpack"]  # the digits VGG has no op XNNPACK lacks, in any target
    assert coverage["delegated"] == coverage["nodes"] and coverage["left"] == {}
    assert report["arena_mb"] > 0

    parity = report["parity"]
    if target == "fp32":
        assert parity["max_abs_diff"] < 1e-4
    elif target == "fp16":
        assert parity["max_abs_diff"] < 2e-2
    assert parity["top1_agreement"] >= (0.99 if target in ("fp32", "fp16") else 0.9)

    data = out.read_bytes()
    metadata = read_metadata(data)
    assert metadata.task == "classification" and metadata.input.size == SIZE and metadata.target == target
    # a model file outside a training run has no labels: the calibration data's names are not the classes
    assert metadata.labels is None and metadata.label_source == "none"
    assert report["consistency"]["ok"] and {c["check"] for c in report["consistency"]["checks"]} >= {"labels", "input"}

    engine = load_engine(data)  # the file still loads in stock LiteRT, metadata and all
    expected_dtype = np.int8 if target == "int8-io" else np.float32
    assert engine.inputs[0].dtype == expected_dtype and engine.outputs[0].dtype == expected_dtype
    x, labels, _ = load_classification_samples("builtin:digits", SIZE, limit=64)
    predictions = np.array([np.argmax(engine(image[None])[0]) for image in x])
    assert np.mean(predictions == labels) > 0.85  # quantized I/O is (de)quantized correctly
    # the pipelines' path: the input written in place (into the interpreter's own tensor when it
    # is float), then invoke; the same outputs as a call with the array
    for image, other in zip(x[:3], x[3:6]):
        expected = engine(image[None])
        engine(other[None])  # so that a write that missed the interpreter would show
        assert engine.write_input(lambda target: np.copyto(target, image[None]) or "filled") == "filled"
        assert all(np.array_equal(a, b) for a, b in zip(engine.invoke(), expected))

    if gpu_runner is None and target in ("fp32", "fp16"):
        skip_gpu_check(f"the {target} file fully accelerated")
    elif target in ("fp32", "fp16"):
        assert report["gpu"]["fully_accelerated"] is True and report["gpu"]["unsupported_ops"] == []


def test_gpu_report_names_the_ops_the_gpu_rejects(capsys, tmp_path, gpu):
    model = edgecnn.create_model("test_alexnet", lrn_implementation="builtin")
    path = tmp_path / "alexnet_lrn.keras"
    model.save(path)
    code = main(["convert", str(path), "--target", "fp32", "--out", str(tmp_path / "m.tflite"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["gpu"]["fully_accelerated"] is False
    assert report["gpu"]["unsupported_ops"] == ["LOCAL_RESPONSE_NORMALIZATION"]


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda d: ["convert", str(d / "missing.keras"), "--target", "fp32", "--out", str(d / "o.tflite")],
         "does not exist"),
        (lambda d: ["convert", str(d / "junk.keras"), "--target", "fp32", "--out", str(d / "o.tflite")],
         "Could not load"),
        (lambda d: ["convert", str(d / "float.keras"), "--target", "int8", "--out", str(d / "o.tflite")],
         "--calibration"),
        (lambda d: ["convert", str(d / "junk.keras"), "--target", "fp32", "--out", str(d / "o.tflite"),
                    "--calibration", "builtin:digitz"], "Did you mean 'digits'"),
    ],
)
def test_convert_errors(capsys, tmp_path, make_args, message):
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    edgecnn.create_model("test_vgg").save(tmp_path / "float.keras")
    code = main(make_args(tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o.tflite").exists()  # nothing half-written


def test_runtime_reads_metadata_without_tensorflow(tmp_path, digits_model, capsys):
    model_path, _ = digits_model
    out = tmp_path / "m.tflite"
    assert main(["convert", str(model_path), "--target", "fp32", "--out", str(out)]) == 0
    code = (
        "import sys; from edgecnn.runtime import load_engine; from edgecnn.runtime.metadata import read_metadata;"
        f"data = open({str(out)!r}, 'rb').read(); m = read_metadata(data); assert m.task == 'classification';"
        "import numpy as np; load_engine(data)(np.zeros((1, 32, 32, 3), np.float32));"
        "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_convert_json_stdout_is_one_document(tmp_path, digits_model):
    """In a real process (native TF/LiteRT logs included), stdout holds exactly the report."""
    model_path, _ = digits_model
    result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "convert", str(model_path), "--target", "fp16",
                             "--out", str(tmp_path / "m.tflite"), "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["target"] == "fp16"
