"""A file's labels match its outputs: where labels come from (the argument, the training run,
never the calibration data), the refusal of a list of the wrong length for every task kind and
target, the `consistency` section of the conversion report, `edgecnn inspect` flagging a file
made elsewhere, and the runtime opening such a file with index names."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest

import edgecnn
from edgecnn.cli.main import main
from edgecnn.errors import EdgeCNNError
from edgecnn.export.metadata import write_metadata
from edgecnn.runtime import open as open_pipeline
from edgecnn.runtime.inspection import inspect_model
from edgecnn.runtime.metadata import read_metadata
from edgecnn.runtime.standard_metadata import associated_files

# (zoo model, overrides, task, how many classes its outputs score)
KINDS = {
    "classifier": ("test_vgg", {"num_classes": 5}, "classification", 5),
    "yolo": ("test_yolo", {"num_classes": 4}, "detection", 4),
    "segmenter": ("test_unet", {}, "segmentation", 3),
    "rcnn": ("test_rcnn", {}, "detection", 3),
    "fast_rcnn": ("test_fast_rcnn", {}, "detection", 3),
    "faster_rcnn": ("test_faster_rcnn", {}, "detection", 3),
    "mask_rcnn": ("test_mask_rcnn", {}, "instance_segmentation", 3),
}
TARGETS = ("fp32", "fp16", "dynamic", "int8", "int8-io")


@pytest.mark.parametrize("kind", KINDS)
def test_convert_refuses_labels_of_another_count_for_every_task_kind(kind, tmp_path):
    name, overrides, task, count = KINDS[kind]
    model = edgecnn.create_model(name, **overrides)
    for wrong in (count - 1, count + 1):
        with pytest.raises(EdgeCNNError) as refused:
            edgecnn.convert(model, "fp32", out=tmp_path / "m.tflite", task=task, labels=[f"c{k}" for k in range(wrong)])
        message = str(refused.value)
        assert f"{wrong} labels" in message and f"score {count} classes" in message and "--labels" in message
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("target", TARGETS)
def test_the_refusal_holds_for_every_target(target, tmp_path):
    model = edgecnn.create_model("test_vgg", num_classes=5)
    with pytest.raises(EdgeCNNError, match="3 labels for a model whose outputs score 5 classes"):
        edgecnn.convert(model, target, out=tmp_path / "m.tflite", calibration="builtin:digits", labels=["a", "b", "c"])


def test_a_generator_takes_no_labels(tmp_path):
    with pytest.raises(EdgeCNNError, match="has no class outputs"):
        edgecnn.convert(edgecnn.create_model("test_pix2pix"), "fp32", labels=["a"])


def _calibration_folder(folder, classes=("a", "b", "c"), size=32):
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for index in range(4):
            cv2.imwrite(str(folder / name / f"{index}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


def test_calibration_folders_never_name_the_classes(tmp_path, capsys):
    """A 10-class model calibrated on pictures in three folders: the file carries no labels (its
    classes are named by index), says so, and still passes every consistency check."""
    model = edgecnn.create_model("test_resnet", num_classes=10)
    model.save(tmp_path / "cls.keras")
    calibration = _calibration_folder(tmp_path / "cal")
    out = tmp_path / "cls.tflite"
    assert main(["convert", str(tmp_path / "cls.keras"), "--target", "int8", "--calibration", f"folder:{calibration}",
                 "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["consistency"]["ok"] and report["metadata"]["label_source"] == "none"
    data = out.read_bytes()
    assert read_metadata(data).labels is None and associated_files(data) == {}
    top = open_pipeline(data, accelerator="cpu", top_k=3)(np.zeros((32, 32, 3), np.uint8)).top_k
    assert [p.label for p in top] == [str(p.index) for p in top]
    # with the right list given, the labels are the argument's
    (tmp_path / "ten.txt").write_text("\n".join(f"class {k}" for k in range(10)))
    assert main(["convert", str(tmp_path / "cls.keras"), "--target", "fp32", "--labels", str(tmp_path / "ten.txt"),
                 "--out", str(out)]) == 0
    metadata = read_metadata(out.read_bytes())
    assert metadata.label_source == "argument" and metadata.labels[9] == "class 9"


def test_a_training_runs_labels_file_is_checked_too(tmp_path):
    """convert takes a run's labels.txt; one edited to the wrong length is refused, naming it."""
    run = tmp_path / "run"
    assert main(["train", "digits_vgg", "--out", str(run),
                 "--set", "training.epochs=1", "--set", "data.limit=64", "--set", "optimization.pruning.enabled=false",
                 "--set", "optimization.qat.enabled=false"]) == 0
    assert (run / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    (run / "labels.txt").write_text("zero\none\n")
    with pytest.raises(EdgeCNNError, match=r"2 labels for a model whose outputs score 10 classes \(labels from the "
                                           r"training run"):
        edgecnn.convert(run / "model.keras", "fp32", out=tmp_path / "m.tflite")


def _file_made_elsewhere(tmp_path, labels: list[str]) -> bytes:
    """A detector file whose metadata was rewritten with ``labels`` of another length (as a tool
    other than edgecnn's convert could write it)."""
    report = edgecnn.convert(edgecnn.create_model("test_yolo", num_classes=4), "fp32",
                             labels=["circle", "rectangle", "triangle", "star"])
    from dataclasses import replace

    return write_metadata(report.flatbuffer, replace(report.metadata, labels=tuple(labels)))


def test_inspect_flags_and_the_runtime_warns_about_labels_that_do_not_fit(tmp_path, capsys):
    data = _file_made_elsewhere(tmp_path, ["circle", "square"])
    consistency = inspect_model(data)["consistency"]
    assert not consistency["ok"]
    failed = [c["detail"] for c in consistency["checks"] if not c["ok"]]
    assert any("2 labels for a model whose outputs score 4 classes" in d for d in failed)
    assert any("holds 2 labels for output 'score' (4 classes" in d for d in failed)  # what MediaPipe reads
    path = tmp_path / "elsewhere.tflite"
    path.write_bytes(data)
    assert main(["inspect", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "PROBLEM labels" in printed and "convert it again" in printed
    with pytest.warns(UserWarning, match="do not fit its outputs"):
        detector = open_pipeline(data, accelerator="cpu", score_threshold=0.0, max_detections=3)
    found = detector(np.zeros((64, 64, 3), np.uint8)).detections
    assert found and all(d.label == str(d.index) for d in found)
    # labels given to the pipeline must fit as well
    with pytest.raises(EdgeCNNError, match="Give exactly 4 class names"):
        open_pipeline(data, accelerator="cpu", labels=["a"])


def test_consistency_checks_normalization_and_anchors():
    """A file whose standard metadata's normalization or anchors disagree with the tensors fails
    those checks (the consistent file passes them)."""
    from edgecnn.runtime.consistency import check_consistency

    data = edgecnn.convert(edgecnn.create_model("test_yolo", num_classes=4), "fp32",
                           labels=["circle", "rectangle", "triangle", "star"]).flatbuffer
    report = inspect_model(data)
    assert report["consistency"]["ok"]
    assert {c["check"] for c in report["consistency"]["checks"]} == {"labels", "input", "normalization", "anchors"}
    standard = json.loads(json.dumps(report["standard_metadata"]))
    subgraph = standard["subgraphs"][0]
    subgraph["inputs"][0]["process_units"][0]["std"] = [127.5]
    subgraph["custom_metadata"]["DETECTOR_METADATA"]["anchors"].pop()
    metadata = read_metadata(data)
    checked = check_consistency(report["inputs"], report["outputs"], metadata, standard, associated_files(data))
    failed = {c["check"] for c in checked["checks"] if not c["ok"]}
    assert failed == {"normalization", "anchors"}


def test_files_of_every_kind_pass_their_checks_without_warnings(tmp_path):
    """Every task kind with fitting labels converts with an ok consistency section and opens in
    the runtime without a label warning."""
    for kind, (name, overrides, task, count) in KINDS.items():
        if kind in ("rcnn", "fast_rcnn"):
            continue  # same outputs as Faster R-CNN's classes; covered by the refusal test
        report = edgecnn.convert(edgecnn.create_model(name, **overrides), "fp32", task=task,
                                 labels=[f"{kind} {k}" for k in range(count)], samples=1)
        assert report.consistency["ok"], (kind, report.consistency)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pipeline = open_pipeline(report.flatbuffer, accelerator="cpu")
        assert pipeline.labels == [f"{kind} {k}" for k in range(count)]
