"""The main job end to end at toy scale (`edgecnn quickstart`), and `eval` / `predict` on the
detector files it writes. The real-scale figures come from the README command, not from here."""

from __future__ import annotations

import json

import pytest

from edgecnn.cli.main import main
from conftest import skip_gpu_check


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "run"
    code = main(["quickstart", "--out", str(out), "--train-images", "16", "--val-images", "4",
                 "--set", "training.epochs=1", "--set", "training.batch_size=8",
                 "--set", "model.overrides.width_multiplier=0.25", "--set", "model.overrides.neck_channels=16",
                 "--set", "optimization.pruning.epochs=1", "--set", "optimization.qat.epochs=1"])
    assert code == 0
    return out


def test_quickstart_writes_report_models_and_annotated_images(quickstart_run, gpu_runner):
    out = quickstart_run
    report = json.loads((out / "report.json").read_text())
    assert set(report["targets"]) == {"float", "int8", "fp16"}
    for name, entry in report["targets"].items():
        assert "map50" in entry and entry["size_bytes"] > 0, name  # learning: tests/test_learning.py
    assert report["targets"]["int8"]["builtin_only"] and report["targets"]["fp16"]["builtin_only"]
    # the int8 file is the QAT model's, a quarter of the fp16 file's size or less (plus metadata)
    assert report["targets"]["int8"]["size_bytes"] < 0.75 * report["targets"]["fp16"]["size_bytes"]
    if gpu_runner is None:
        skip_gpu_check("the quickstart's fp16 file fully accelerated")
    else:
        assert report["targets"]["fp16"]["gpu_fully_accelerated"] is True
    from edgecnn.training.recipe import PACKAGED_RECIPES, load_recipe

    target = load_recipe(PACKAGED_RECIPES / "shapes_yolo.yaml").optimization.pruning.target_sparsity
    assert report["training"]["pruned"]["mean_kernel_sparsity"] == pytest.approx(target, abs=0.02)
    assert f"pruned to {target:.0%} sparsity" in (out / "report.md").read_text()
    assert report["training"]["qat"]["sparsity_preserving"] is True
    assert len(report["predictions"]) == 4 and all((out / "predictions" / p.split("/")[-1]).exists()
                                                   for p in report["predictions"])
    lines = (out / "predictions" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "detections" in json.loads(lines[0])
    text = (out / "report.md").read_text()
    assert "| int8 |" in text and "predictions/" in text
    # the shapes were written as COCO files and read back through the coco: path
    assert report["data"]["train"].startswith("coco:") and (out / "data" / "val" / "annotations.json").exists()


def test_quickstart_refuses_to_overwrite_a_run(quickstart_run, capsys):
    assert main(["quickstart", "--out", str(quickstart_run)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_eval_prints_map_for_keras_and_tflite(quickstart_run, capsys):
    val = f"coco:{quickstart_run / 'data' / 'val' / 'annotations.json'}"
    results = {}
    for model in (quickstart_run / "train" / "model.keras", quickstart_run / "models" / "yolo_int8.tflite"):
        capsys.readouterr()
        assert main(["eval", str(model), "--data", val, "--json"]) == 0
        results[model.suffix] = json.loads(capsys.readouterr().out)
    for figures in results.values():
        assert figures["split"] == "all" and figures["images"] == 4 and "map50" in figures
    report = json.loads((quickstart_run / "report.json").read_text())
    assert results[".tflite"]["map50"] == pytest.approx(report["targets"]["int8"]["map50"])


def test_predict_draws_detections(quickstart_run, tmp_path):
    images = quickstart_run / "data" / "val" / "images"
    out = tmp_path / "predicted"
    assert main(["predict", str(quickstart_run / "models" / "yolo_fp16.tflite"), str(images), "--out", str(out),
                 "--accelerator", "cpu", "--score-threshold", "0.01"]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all("detections" in r and r["image_size"] == [128, 128] for r in records)
    assert len(list(out.glob("*.png"))) == 4


def test_eval_errors_are_clear(quickstart_run, tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.tflite"), "--data", "builtin:shapes"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", str(quickstart_run / "models" / "yolo_int8.tflite"), "--data", "builtin:digits"]) == 2
    assert "does not provide boxes" in capsys.readouterr().err
