"""The phone ecosystem opens edgecnn's files as they are: MediaPipe Tasks (the C++ task engine
that Android, iOS and the web run; its Python API is the test client) opens the classifier,
detector and segmenter files of every float-I/O target and gives edgecnn's runtime results.

mediapipe runs in its own environment (it needs opencv-contrib-python, a second cv2), made once
under ~/.cache/edgecnn/venvs/mediapipe from the package index: these tests are marked network.
The standard-metadata reader and writer are also checked without mediapipe (first test).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from sample_images import photos, shapes  # tests/, beside this file

import edgecnn
from edgecnn.export.mediapipe_tasks import DEFAULT_ENVIRONMENT, PYTHON_VARIABLE, mediapipe_python, run_mediapipe
from edgecnn.runtime import open as open_pipeline
from edgecnn.runtime.detection import iou_matrix
from edgecnn.runtime.standard_metadata import associated_files, box_anchors, read_standard_metadata

MEDIAPIPE_VERSION = "1.2.2"
TARGETS = ("fp32", "fp16", "int8")
SHAPES = ["circle", "rectangle", "triangle", "star"]




def _save(images: list[np.ndarray], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"{index}.npy")
        np.save(paths[-1], image)
    return paths


def test_standard_metadata_round_trip_without_mediapipe(tmp_path):
    """What the writer puts in a detector file reads back with the fields MediaPipe needs; the
    label file is packed after the flatbuffer and LiteRT still runs the file."""
    model = edgecnn.create_model("test_yolo", num_classes=4)
    report = edgecnn.convert(model, "fp32", out=tmp_path / "det.tflite", labels=SHAPES)
    data = (tmp_path / "det.tflite").read_bytes()
    standard = read_standard_metadata(data)
    subgraph = standard["subgraphs"][0]
    assert standard["min_parser_version"] == "1.5.0"
    normalization = subgraph["inputs"][0]["process_units"][0]
    assert normalization == {"type": "NormalizationOptions", "mean": [0.0], "std": [255.0]}
    names = [t["name"] for t in subgraph["outputs"]]
    assert sorted(names) == ["location", "score"]
    location = subgraph["outputs"][names.index("location")]["content"]
    assert location["box_type"] == "BOUNDARIES" and location["coordinate_type"] == "RATIO"
    score_files = subgraph["outputs"][names.index("score")]["associated_files"]
    assert score_files == [{"name": "labels.txt", "description": "class names, one per line",
                            "type": "TENSOR_AXIS_LABELS"}]
    assert associated_files(data) == {"labels.txt": "\n".join(SHAPES).encode()}
    detector = subgraph["custom_metadata"]["DETECTOR_METADATA"]
    expected = box_anchors((64, 64), (8, 16, 32))
    assert detector["num_boxes"] == len(expected) == 84 and detector["num_classes"] == 4
    assert np.allclose(detector["anchors"], expected)
    assert detector["sigmoid_score"] and not detector["apply_exponential_on_box_size"]
    assert report.metadata.decoding["box_encoding"] == "yxhw_stride"
    # the file still runs in edgecnn's runtime, with the same detections as the Keras model's decoding
    found = open_pipeline(data, accelerator="cpu", score_threshold=0.0, max_detections=5)(shapes(64, 1)[0])
    assert len(found.detections) == 5


@pytest.fixture(scope="module")
def mediapipe(tmp_path_factory) -> str:
    """A Python with mediapipe: the user's (see edgecnn.export.mediapipe_tasks), else one made
    once under ~/.cache/edgecnn/venvs/mediapipe (a lock keeps xdist workers from racing)."""
    found = mediapipe_python()
    if found is not None:
        return found
    DEFAULT_ENVIRONMENT.parent.mkdir(parents=True, exist_ok=True)
    with open(DEFAULT_ENVIRONMENT.parent / "mediapipe.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = DEFAULT_ENVIRONMENT / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(DEFAULT_ENVIRONMENT)], check=True)
            install = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                      f"mediapipe=={MEDIAPIPE_VERSION}"], capture_output=True, text=True, timeout=900)
            if install.returncode != 0:
                subprocess.run(["rm", "-rf", str(DEFAULT_ENVIRONMENT)])
                pytest.fail(f"installing mediapipe failed: {install.stderr[-2000:]}")
    return str(python)


@pytest.fixture(scope="module")
def phone_files(tmp_path_factory, shapes_detector) -> dict[tuple[str, str], Path]:
    """A classifier, a detector trained briefly on shapes (so it finds things) and a segmenter,
    each converted to fp32, fp16 and int8."""
    folder = tmp_path_factory.mktemp("phone")
    import tf_keras as keras

    def seeded(name: str, **overrides):
        # each model seeded right before it is built: its weights do not depend on what ran before
        # (an unseeded U-Net once gave one class everywhere, failing the segmenter test's precondition)
        keras.utils.set_random_seed(0)
        return edgecnn.create_model(name, **overrides)

    sources = {"classification": (seeded("test_vgg", num_classes=5), "builtin:digits"),
               "detection": (shapes_detector, None),
               "segmentation": (seeded("test_unet"), "builtin:shapes")}
    labels = {"classification": [f"class {k}" for k in range(5)], "segmentation": ["background", "shape", "edge"],
              "detection": None}
    files = {}
    for task, (model, calibration) in sources.items():
        for target in TARGETS:
            files[task, target] = folder / f"{task}_{target}.tflite"
            edgecnn.convert(model, target, out=files[task, target], task=task, labels=labels[task],
                            calibration=calibration if target == "int8" else None)
    return files


@pytest.mark.network
@pytest.mark.parametrize("target", TARGETS)
def test_mediapipe_image_classifier_agrees_with_the_runtime(mediapipe, phone_files, target, tmp_path):
    path = phone_files["classification", target]
    images = photos(32) + shapes(32, 4)
    answer = run_mediapipe(path, "classification", _save(images, tmp_path), python=mediapipe)
    assert answer["opened"], answer
    classifier = open_pipeline(path, accelerator="cpu", top_k=5)
    for image, theirs in zip(images, answer["results"]):
        ours = classifier(image).top_k
        assert theirs[0]["label"] == ours[0].label
        by_label = {p.label: p.score for p in ours}
        assert len(theirs) == 5 and all(abs(p["score"] - by_label[p["label"]]) <= 0.01 for p in theirs)


@pytest.mark.network
@pytest.mark.parametrize("target", TARGETS)
def test_mediapipe_object_detector_agrees_with_the_runtime(mediapipe, phone_files, target, tmp_path):
    """Same detections (labels, scores, boxes) as edgecnn's Detector with MediaPipe's semantics:
    agnostic=True (one class per anchor, NMS across classes) and NMS at IoU 0.3, MediaPipe's
    default (measured: at edgecnn's 0.5, 8 boxes on one photo where MediaPipe keeps 6).

    MediaPipe's Python result holds integer pixels (origin and size each truncated) and does not
    clip boxes to the image (edgecnn does), so the 64x64 images are given 8x enlarged by pixel
    repetition: both runtimes shrink them back to exactly the same model input (area averaging,
    and bilinear sampling between two equal pixels), and a truncated pixel is small beside the
    boxes; MediaPipe's boxes are clipped to the image before the IoU."""
    path = phone_files["detection", target]
    images = [cv2.resize(image, (512, 512), interpolation=cv2.INTER_NEAREST) for image in shapes(64) + photos(64)]
    threshold = 0.1
    answer = run_mediapipe(path, "detection", _save(images, tmp_path), score_threshold=threshold, python=mediapipe)
    assert answer["opened"], answer
    detector = open_pipeline(path, accelerator="cpu", score_threshold=threshold, agnostic=True, iou_threshold=0.3)
    matched = 0
    for image, theirs in zip(images, answer["results"]):
        ours = detector(image).detections
        assert len(ours) == len(theirs)
        if not ours:
            continue
        their_boxes = np.clip(np.array([d["box"] for d in theirs], np.float32), 0, 512)
        overlap = iou_matrix(their_boxes, np.array([d.box for d in ours], np.float32))
        for detection, row in zip(theirs, overlap):
            mine = ours[int(row.argmax())]
            assert row.max() >= 0.9 and detection["label"] == mine.label
            assert abs(detection["score"] - mine.score) <= 0.02
            matched += 1
    assert matched >= 6  # the shapes images do have detections to compare


@pytest.mark.network
@pytest.mark.parametrize("target", TARGETS)
def test_mediapipe_image_segmenter_agrees_with_the_runtime(mediapipe, phone_files, target, tmp_path):
    path = phone_files["segmentation", target]
    images = shapes(32, 4) + photos(32)
    answer = run_mediapipe(path, "segmentation", _save(images, tmp_path / "in"), out_dir=tmp_path, python=mediapipe)
    assert answer["opened"], answer
    segmenter = open_pipeline(path, accelerator="cpu")
    for image, mask_path in zip(images, answer["results"]):
        theirs = np.load(mask_path).reshape(32, 32)
        ours = segmenter(image).class_map
        assert len(np.unique(ours)) > 1  # a non-constant map: the comparison means something
        assert (theirs == ours).mean() >= 0.99


@pytest.mark.network
def test_inspect_decodes_both_metadata_blocks_and_asks_mediapipe(mediapipe, phone_files, tmp_path):
    """`edgecnn inspect --json` decodes the standard metadata and asks MediaPipe; an int8-io file
    carries the metadata too, and MediaPipe's refusal (int8 input) is reported as data."""
    int8_io = tmp_path / "int8-io.tflite"
    edgecnn.convert(edgecnn.create_model("test_vgg", num_classes=5), "int8-io", out=int8_io,
                    calibration="builtin:digits", task="classification")
    env = {**os.environ, PYTHON_VARIABLE: mediapipe}
    for path, opens in ((phone_files["detection", "int8"], True), (int8_io, False)):
        result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "inspect", str(path), "--json"],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads(result.stdout)
        assert report["edgecnn_metadata"]["task"] in ("detection", "classification")
        assert report["standard_metadata"]["subgraphs"][0]["inputs"][0]["process_units"][0]["std"] == [255.0]
        assert report["mediapipe"]["checked"] and report["mediapipe"]["opened"] is opens
        if not opens:
            assert "INT8" in report["mediapipe"]["reason"]


@pytest.mark.network
def test_mediapipes_own_schema_reads_what_edgecnn_wrote(mediapipe, phone_files):
    """Cross-check of the writer against mediapipe's generated schema module (not edgecnn's
    reader): the fields MediaPipe's tasks use, read in mediapipe's environment."""
    script = """
import json, sys
from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
from mediapipe.tasks.metadata import schema_py_generated as tfl
from mediapipe.tasks.metadata import object_detector_metadata_schema_py_generated as det
data = open(sys.argv[1], "rb").read()
model = tfl.Model.GetRootAs(data, 0)
buffer = [model.Metadata(i).Buffer() for i in range(model.MetadataLength())
          if model.Metadata(i).Name() == b"TFLITE_METADATA"][0]
raw = model.Buffers(buffer).DataAsNumpy().tobytes()
assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0)
meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(raw, 0))
graph = meta.subgraphMetadata[0]
norm = graph.inputTensorMetadata[0].processUnits[0].options
custom = {c.name.decode(): bytes(c.data) for c in graph.customMetadata or []}
options = det.ObjectDetectorOptionsT.InitFromObj(det.ObjectDetectorOptions.GetRootAs(custom["DETECTOR_METADATA"], 0))
print(json.dumps({"mean": list(map(float, norm.mean)), "std": list(map(float, norm.std)),
                  "outputs": [t.name.decode() for t in graph.outputTensorMetadata],
                  "labels": [f.name.decode() for t in graph.outputTensorMetadata for f in t.associatedFiles or []],
                  "anchors": len(options.ssdAnchorsOptions.fixedAnchorsSchema.anchors),
                  "num_classes": options.tensorsDecodingOptions.numClasses,
                  "parser": meta.minParserVersion.decode()}))
"""
    path = phone_files["detection", "fp32"]
    result = subprocess.run([mediapipe, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    theirs = json.loads(result.stdout)
    ours = read_standard_metadata(path.read_bytes())["subgraphs"][0]
    assert theirs["mean"] == [0.0] and theirs["std"] == [255.0]
    assert theirs["outputs"] == [t["name"] for t in ours["outputs"]]
    assert theirs["labels"] == ["labels.txt"]
    assert theirs["anchors"] == 84 and theirs["num_classes"] == 4 and theirs["parser"] == "1.5.0"


@pytest.mark.network
def test_readme_mediapipe_example_runs(mediapipe, phone_files, tmp_path):
    """README's "On a phone" example, as written, in mediapipe's environment."""
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (block,) = re.findall(r"```py\n(.*?)```", readme, flags=re.S)
    path = tmp_path / "detector_fp16.tflite"
    path.write_bytes(phone_files["detection", "fp16"].read_bytes())
    # a picture on which the block's threshold finds something (MediaPipe's semantics, as edgecnn's)
    detector = open_pipeline(path, accelerator="cpu", score_threshold=0.25, agnostic=True, iou_threshold=0.3)
    picture = next((image for image in shapes(64, 30) if detector(image).detections), None)
    assert picture is not None, "the test detector finds nothing at 0.25 on 30 shapes images"
    ours = sorted(d.label for d in detector(picture).detections)
    cv2.imwrite(str(tmp_path / "shapes.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    result = subprocess.run([mediapipe, "-c", block], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = sorted(line.split()[0] for line in result.stdout.splitlines() if line.strip())
    assert printed == ours and set(printed) <= set(SHAPES)  # the file's labels, the runtime's detections


@pytest.mark.network
def test_mediapipe_stretches_non_square_frames_where_edgecnn_letterboxes(mediapipe, phone_files, tmp_path):
    """The difference by design the README and deploy/android.md state: on 2:1 frames MediaPipe's
    detections are edgecnn's on the frame stretched to the input, not on its letterbox."""
    path = phone_files["detection", "fp32"]
    pictures = shapes(64, 6)
    frames = [cv2.resize(np.concatenate([pictures[k], pictures[k + 1]], 1), (1024, 512), interpolation=cv2.INTER_NEAREST)
              for k in (0, 2, 4)]
    answer = run_mediapipe(path, "detection", _save(frames, tmp_path), score_threshold=0.1, python=mediapipe)
    detector = open_pipeline(path, accelerator="cpu", score_threshold=0.1, agnostic=True, iou_threshold=0.3)
    stretched, letterboxed = [], []
    for frame, theirs in zip(frames, answer["results"]):
        frame_box = np.array([1024, 512, 1024, 512], np.float32)
        their_boxes = np.clip(np.array([d["box"] for d in theirs], np.float32).reshape(-1, 4), 0, frame_box)
        squeezed = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
        ours = np.array([d.box for d in detector(squeezed).detections], np.float32).reshape(-1, 4) * frame_box / 64
        boxed = np.array([d.box for d in detector(frame).detections], np.float32).reshape(-1, 4)
        for mine, scores in ((ours, stretched), (boxed, letterboxed)):
            if len(their_boxes):
                scores += list(iou_matrix(their_boxes, mine).max(1)) if len(mine) else [0.0] * len(their_boxes)
    assert len(stretched) >= 3
    assert np.median(stretched) >= 0.85 and np.median(stretched) > np.median(letterboxed) + 0.2


@pytest.mark.network
def test_mediapipe_runs_files_without_labels_and_fails_on_labels_that_do_not_fit(mediapipe, tmp_path):
    """Where no labels are known the standard metadata carries none, and MediaPipe Tasks runs the
    file with index-only categories: classify, detect and segment. A label list of another length
    (written around `edgecnn convert`, which refuses it) opens, then fails at the first frame:
    what the refusal prevents."""
    from dataclasses import replace

    from edgecnn.export.metadata import write_metadata

    images = _save(shapes(64, 2), tmp_path / "in")
    made = {"classification": edgecnn.create_model("test_vgg", num_classes=5, input_shape=(64, 64, 3)),
            "detection": edgecnn.create_model("test_yolo", num_classes=4),
            "segmentation": edgecnn.create_model("test_unet", input_shape=(64, 64, 3))}
    for task, model in made.items():
        report = edgecnn.convert(model, "fp32", out=tmp_path / f"{task}.tflite", task=task, samples=1)
        assert report.metadata.labels is None and associated_files(report.flatbuffer) == {}
        answer = run_mediapipe(tmp_path / f"{task}.tflite", task, images, score_threshold=0.0, max_results=3,
                               out_dir=tmp_path, python=mediapipe)
        assert answer["opened"] and len(answer["results"]) == 2, answer
        if task == "classification":
            assert all(len(r) == 3 and all(c["label"] in (None, "") for c in r) for r in answer["results"])
        elif task == "detection":
            assert all(r and all(d["label"] in (None, "") for d in r) for r in answer["results"])
        else:
            assert all(np.load(mask).size == 64 * 64 for mask in answer["results"])
    report = edgecnn.convert(made["classification"], "fp32", labels=[f"class {k}" for k in range(5)], samples=1)
    (tmp_path / "misfit.tflite").write_bytes(write_metadata(report.flatbuffer,
                                                            replace(report.metadata, labels=("a", "b", "c"))))
    answer = run_mediapipe(tmp_path / "misfit.tflite", "classification", images, python=mediapipe)
    assert answer["opened"] and answer["results"] == [] and "(5 vs. 3)" in answer["run_error"], answer


@pytest.mark.network
def test_mediapipe_agrees_on_a_file_built_for_imagenet_weights(mediapipe, tmp_path):
    """A model built for Keras Applications' weights keeps RGB in [0, 1] as its file's input (its
    first layer makes their BGR, mean-subtracted input): MediaPipe, which applies one mean and std
    to every channel, gives the runtime's classes."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    reference.save_weights(tmp_path / "vgg16_notop.h5")
    model = edgecnn.create_model("vgg16", weights=tmp_path / "vgg16_notop.h5", input_shape=(32, 32, 3),
                                 num_classes=5, fc_units=256)
    path = tmp_path / "vgg16.tflite"
    edgecnn.convert(model, "fp32", out=path, labels=[f"class {k}" for k in range(5)], samples=1)
    images = photos(32) + shapes(32, 4)
    answer = run_mediapipe(path, "classification", _save(images, tmp_path / "images"), python=mediapipe)
    assert answer["opened"], answer
    classifier = open_pipeline(path, accelerator="cpu", top_k=5)
    for image, theirs in zip(images, answer["results"]):
        ours = {p.label: p.score for p in classifier(image).top_k}
        assert theirs[0]["label"] == max(ours, key=ours.get)
        assert all(abs(p["score"] - ours[p["label"]]) <= 0.01 for p in theirs)
