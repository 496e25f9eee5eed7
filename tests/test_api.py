"""The Python API behind every verb: edgecnn.train / convert / evaluate / load_model and
edgecnn.runtime.open, and what the CLI adds on top (nothing but parsing and printing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgecnn
from edgecnn.cli.main import main

CONTRACT_REPORT_KEYS = {"target", "size_bytes", "gzip_bytes", "ops", "builtin_only", "gpu", "parity", "latency_ms"}


@pytest.fixture(scope="module")
def tiny_classifier():
    return edgecnn.create_model("test_vgg", input_shape=(32, 32, 3), num_classes=10)


def test_convert_returns_a_typed_report_and_writes_only_when_asked(tiny_classifier, tmp_path):
    from edgecnn.export.conversion import ConversionReport
    from edgecnn.runtime.metadata import ModelMetadata, read_metadata

    in_memory = edgecnn.convert(tiny_classifier, "fp32", calibration="builtin:digits", samples=2)
    assert isinstance(in_memory, ConversionReport) and in_memory.output is None
    assert list(tmp_path.iterdir()) == []  # no out: nothing written
    assert isinstance(in_memory.metadata, ModelMetadata) and in_memory.metadata.task == "classification"
    assert read_metadata(in_memory.flatbuffer) == in_memory.metadata  # the file carries what the report says
    assert in_memory.parity["max_abs_diff"] < 1e-4 and in_memory.parity["top1_agreement"] == 1.0

    out, report_file = tmp_path / "m.tflite", tmp_path / "m.json"
    written = edgecnn.convert(tiny_classifier, "fp16", out=out, calibration="builtin:digits", samples=2,
                              report=report_file)
    document = written.to_json()
    assert CONTRACT_REPORT_KEYS <= set(document) and document["output"] == str(out)
    assert json.loads(report_file.read_text()) == document
    assert out.read_bytes() == written.flatbuffer and document["size_bytes"] == len(written.flatbuffer)
    # a model outside a training run: the calibration data does not name its classes
    assert document["metadata"]["labels"] is None and document["metadata"]["label_source"] == "none"
    assert document["consistency"]["ok"]
    json.dumps(document)  # plain JSON types throughout


def test_cli_convert_prints_what_the_api_returns(tiny_classifier, tmp_path, capsys):
    tiny_classifier.save(tmp_path / "model.keras")
    out = tmp_path / "cli.tflite"
    assert main(["convert", str(tmp_path / "model.keras"), "--target", "fp32", "--out", str(out),
                 "--calibration", "builtin:digits", "--samples", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = edgecnn.convert(tmp_path / "model.keras", "fp32", calibration="builtin:digits", samples=2).to_json()
    for key in ("target", "ops", "builtin_only", "size_bytes"):
        assert printed[key] == api[key], key
    assert printed["metadata"] == {**api["metadata"]}


def test_evaluate_equals_eval_json_for_keras_and_tflite(tiny_classifier, tmp_path, capsys):
    report = edgecnn.convert(tiny_classifier, "fp32", out=tmp_path / "m.tflite", calibration="builtin:digits",
                             samples=2)
    for model in (tiny_classifier, tmp_path / "m.tflite"):
        metrics = edgecnn.evaluate(model, "builtin:digits", limit=40)
        assert metrics["split"] == "val" and metrics["images"] == 40 and "top1" in metrics
    capsys.readouterr()
    assert main(["eval", report.output, "--data", "builtin:digits", "--limit", "40", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == edgecnn.evaluate(report.output, "builtin:digits", limit=40)


def _file(model, task: str, tmp_path: Path) -> Path:
    from edgecnn.export.convert import convert
    from edgecnn.export.metadata import metadata_for, write_metadata

    path = tmp_path / f"{task}.tflite"
    path.write_bytes(write_metadata(convert(model, "fp32"), metadata_for(model, task)))
    return path


def test_runtime_open_picks_the_pipeline_the_metadata_names(tmp_path):
    import edgecnn.runtime as runtime

    models = {"classification": edgecnn.create_model("test_vgg", input_shape=(32, 32, 3), num_classes=3),
              "detection": edgecnn.create_model("test_yolo", num_classes=2),
              "segmentation": edgecnn.create_model("test_unet", num_classes=3),
              "generation": edgecnn.create_model("test_pix2pix")}
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for task, model in models.items():
        pipeline = runtime.open(_file(model, task, tmp_path), accelerator="cpu")
        assert type(pipeline) is runtime.PIPELINES[task], task
        result = pipeline(image)
        assert result.pipeline_ms >= result.invoke_ms > 0
        drawn = runtime.draw(image, result)  # a translation beside its input, the others drawn on it
        assert drawn.shape[:2] == (40, 50 + 4 + 50 if task == "generation" else 50), task
    with pytest.raises(edgecnn.EdgeCNNError, match="takes no option score_threshold"):
        runtime.open(tmp_path / "classification.tflite", accelerator="cpu", score_threshold=0.5)
    detector = runtime.open(tmp_path / "detection.tflite", accelerator="cpu", score_threshold=0.9)
    assert detector.score_threshold == 0.9


def test_train_api_takes_a_packaged_recipe_name_and_overrides(tmp_path):
    metrics = edgecnn.train("digits_vgg", tmp_path / "run", overrides=[
        "model.name=test_vgg", "training.epochs=1", "optimization.pruning.enabled=false",
        "optimization.qat.enabled=false", "data.augment.scale=0.0"])
    assert (tmp_path / "run" / "model.keras").is_file() and "float" in metrics["stages"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["stages"].keys() == metrics["stages"].keys()
    with pytest.raises(edgecnn.EdgeCNNError, match="already holds a training run"):
        edgecnn.train("digits_vgg", tmp_path / "run", overrides=["model.name=test_vgg"])


def _lambda_model(marker: Path):
    from edgecnn._keras import keras

    trace = str(marker)  # the function's closure is saved with it: plain strings only

    def side_effect(x):  # what a hostile file could do instead: here it only leaves a trace
        import pathlib

        pathlib.Path(trace).write_text("ran")
        return x

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(side_effect, name="sneaky")(keras.layers.Conv2D(2, 3)(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(outputs))


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_model_file_with_code_is_refused_unless_trusted(tmp_path, capsys, suffix):
    marker = tmp_path / "ran"
    path = tmp_path / f"lambda{suffix}"
    _lambda_model(marker).save(path)
    marker.unlink(missing_ok=True)  # saving traced the function once
    assert main(["convert", str(path), "--target", "fp32", "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err
    assert "sneaky" in err and "Lambda" in err and "--trust-model" in err
    assert not marker.exists() and not (tmp_path / "x.tflite").exists()
    assert main(["eval", str(path), "--data", "builtin:digits"]) == 2 and not marker.exists()
    with pytest.raises(edgecnn.EdgeCNNError, match="sneaky"):
        edgecnn.load_model(path)
    assert not marker.exists()
    edgecnn.load_model(path, trust=True)  # the user's explicit choice: the code runs
    assert marker.exists()


def test_software_vulkan_is_recognised_from_the_loader_s_driver_list(tmp_path, monkeypatch):
    from edgecnn.runtime.gpu import software_vulkan_driver

    monkeypatch.delenv("VK_DRIVER_FILES", raising=False)
    monkeypatch.setenv("VK_ICD_FILENAMES", str(tmp_path / "vk_swiftshader_icd.json"))
    assert software_vulkan_driver() == "SwiftShader"
    monkeypatch.setenv("VK_ICD_FILENAMES", "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
    assert software_vulkan_driver() == "lavapipe"
    monkeypatch.setenv("VK_ICD_FILENAMES", "/usr/share/vulkan/icd.d/lvp_icd.json:/usr/share/vulkan/icd.d/nvidia_icd.json")
    assert software_vulkan_driver() is None  # a hardware driver is among them
    monkeypatch.setenv("VK_ICD_FILENAMES", "/usr/share/vulkan/icd.d/radeon_icd.x86_64.json")
    assert software_vulkan_driver() is None
