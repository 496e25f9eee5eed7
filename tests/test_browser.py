"""The browser page (deploy/web) in a real headless Chromium: the same files give the same results
there as in edgecnn.runtime. MediaPipe Tasks for Web runs the classifier, the detector (int8 and
fp16) and the segmenter; LiteRT.js runs an R-CNN, a Fast R-CNN, a Faster R-CNN, a Mask R-CNN and a
generator with the page's own pre- and post-processing (selective search included: the page's
proposals are compared with the runtime's box for box, in Node.js). Each file runs on the CPU
(WebAssembly) and, where headless Chromium has them through SwiftShader, on the GPU (WebGL for
MediaPipe, WebGPU for LiteRT.js).

The detector is the MediaPipe tests' YOLO (the quickstart's recipe at test size, trained in a
minute); EDGECNN_BROWSER_DETECTOR=RUN_FOLDER runs the same tests on a trained run instead (e.g.
the quickstart's: its int8 file from model_qat.h5 where the run has one, fp16 from model.keras).

Needs Chromium (Debian's `chromium`), Node.js and the page's npm packages (`bash
deploy/web/setup.sh`); skipped with the reason where they are missing, failed instead where
EDGECNN_REQUIRE_BROWSER=1 (CI). Screenshots of every run go to $EDGECNN_ARTIFACTS/browser (default:
pytest's temporary folder); the test prints where."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from sample_images import photos, shapes  # tests/, beside this file

import edgecnn
from edgecnn.runtime import open as open_pipeline
from edgecnn.runtime.detection import iou_matrix
from edgecnn.runtime.search_pixels import warp_region
from edgecnn.runtime.selective_search import selective_search

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "web"))
from page_jobs import make_site, run_jobs  # deploy/web: the page's own server and driver

pytestmark = pytest.mark.browser

WEB = Path(__file__).resolve().parents[1] / "deploy" / "web"
# box IoU, score difference and share of equal mask pixels against edgecnn.runtime on the CPU; the
# browser's GPU paths compute in half precision (WebGL, WebGPU), so they get looser bounds
AGREEMENT = {"cpu": (0.9, 0.02, 0.99), "gpu": (0.8, 0.05, 0.95)}
RCNN_THRESHOLD = 0.65  # with _ranking's head: 2 to 63 detections per test image, under the cap of 100


def _missing_node() -> str | None:
    return "Node.js is not installed (apt-get install nodejs npm)" if shutil.which("node") is None else None


def _missing() -> str | None:
    missing = _missing_node()
    if missing:
        return missing
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        return "the page's npm packages are not installed (bash deploy/web/setup.sh)"
    if _chromium() is None:
        return "Chromium is not installed (apt-get install chromium, or set EDGECNN_CHROMIUM to its path)"
    return None


def _chromium() -> str | None:
    given = os.environ.get("EDGECNN_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _skip_or_fail(missing: str) -> None:
    if os.environ.get("EDGECNN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"EDGECNN_REQUIRE_BROWSER=1 but {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory, request):
    """Convert the files, serve them beside the page, run every job in one Chromium; returns
    (driver output, {job: (file, images)})."""
    missing = _missing()
    if missing:
        _skip_or_fail(missing)
    given_run = os.environ.get("EDGECNN_BROWSER_DETECTOR")
    if given_run:
        detector_float = Path(given_run) / "model.keras"
        detector_int8 = detector_float.with_name("model_qat.h5")
        detector_int8 = detector_int8 if detector_int8.is_file() else detector_float
    else:  # trained only when the browser can run
        detector_float = detector_int8 = request.getfixturevalue("shapes_detector")
    from edgecnn._keras import keras

    site = tmp_path_factory.mktemp("site")
    files = make_site(site)

    def seeded(name: str, **overrides):
        keras.utils.set_random_seed(0)
        return edgecnn.create_model(name, **overrides)

    sources = {
        "classification_int8": (seeded("test_vgg", num_classes=5), "int8", "builtin:digits", [f"class {k}" for k in range(5)]),
        "detection_int8": (detector_int8, "int8", None, None),
        "detection_fp16": (detector_float, "fp16", None, None),
        "segmentation_int8": (seeded("test_unet"), "int8", "builtin:shapes", ["background", "shape", "edge"]),
        "faster_rcnn_int8": (seeded("test_faster_rcnn", num_classes=4), "int8", "builtin:shapes", None),
        "mask_rcnn_fp32": (seeded("test_mask_rcnn", num_classes=4), "fp32", "builtin:shapes", None),
        "generator_fp32": (seeded("test_pix2pix"), "fp32", "builtin:painted_shapes", None),
        "rcnn_fp32": (_ranking(seeded("test_rcnn", num_classes=4)), "fp32", None, None),
        "fast_rcnn_fp32": (seeded("test_fast_rcnn", num_classes=4), "fp32", "builtin:shapes", None),
        "generator_int8_io": (seeded("test_pix2pix"), "int8-io", "builtin:painted_shapes", None),
    }
    paths = {}
    for name, (model, target, calibration, labels) in sources.items():
        paths[name] = files / f"{name}.tflite"
        task = "instance_segmentation" if name.startswith("mask") else "generation" if name.startswith("gen") else None
        edgecnn.convert(model, target, out=paths[name], calibration=calibration if target.startswith("int8") else None,
                        labels=labels, task=task, samples=2)
    images = {"shapes32": shapes(32, 4) + photos(32), "shapes512": [_enlarged(i, 512) for i in shapes(64) + photos(64)],
              "shapes128": [_enlarged(i, 128) for i in shapes(64, 4)], "shapes64": [_enlarged(i, 64) for i in shapes(32, 3)]}
    urls = {}
    for group, pictures in images.items():
        urls[group] = []
        for index, picture in enumerate(pictures):
            cv2.imwrite(str(files / f"{group}_{index}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            urls[group].append(f"files/{group}_{index}.png")
    plan = {  # job -> file, images, options; "_gpu" jobs ask for the GPU
        "classifier": ("classification_int8", "shapes32", {}),
        "detector_int8": ("detection_int8", "shapes512", {"scoreThreshold": 0.1}),
        "detector_fp16": ("detection_fp16", "shapes512", {"scoreThreshold": 0.1}),
        "segmenter": ("segmentation_int8", "shapes32", {}),
        "faster_rcnn": ("faster_rcnn_int8", "shapes128", {"scoreThreshold": 0.2}),
        "mask_rcnn": ("mask_rcnn_fp32", "shapes128", {"scoreThreshold": 0.2}),
        "generator": ("generator_fp32", "shapes64", {}),
        "rcnn": ("rcnn_fp32", "shapes128", {"scoreThreshold": RCNN_THRESHOLD}),
        "fast_rcnn": ("fast_rcnn_fp32", "shapes128", {"scoreThreshold": 0.2}),
    }
    jobs = []
    for job, (name, group, options) in plan.items():
        for delegate in ("cpu", "gpu"):
            jobs.append({"name": f"{job}_{delegate}", "model": f"files/{name}.tflite", "images": urls[group],
                         "delegate": delegate, "options": options})
    (files / "truncated.tflite").write_bytes(paths["classification_int8"].read_bytes()[:100])
    for name, model in (("int8_io", "generator_int8_io.tflite"), ("truncated", "truncated.tflite")):  # files it refuses
        jobs.append({"name": name, "model": f"files/{model}", "images": urls["shapes128"][:1], "delegate": "cpu"})
    for name, model in (("camera_classifier", "classification_int8"), ("camera_fast_rcnn", "fast_rcnn_fp32")):
        jobs.append({"name": name, "camera": True, "model": f"files/{model}.tflite", "delegate": "cpu", "frames": 3})
    artifacts = Path(os.environ.get("EDGECNN_ARTIFACTS") or tmp_path_factory.mktemp("artifacts")) / "browser"
    artifacts.mkdir(parents=True, exist_ok=True)
    output = run_jobs(site, jobs, _chromium(), artifacts, timeout=600)
    print(f"browser screenshots: {artifacts}")
    return output, {job: (paths[name], images[group]) for job, (name, group, _) in plan.items()}, artifacts


def _ranking(rcnn):
    """A random R-CNN's SVM margins are all near 0 (every score 0.500 +- 0.001, an order that
    float noise could change): its SVM weights times 300 spread the scores to 0.5-0.78."""
    layer = rcnn.get_layer("svm_scores")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 300, bias])
    return rcnn


def _enlarged(image: np.ndarray, size: int) -> np.ndarray:
    """Pixel repetition: shrunk back, both runtimes get exactly the original pixels."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


def _matches(found: list[dict], ours: list, delegate: str) -> list[tuple[dict, object]]:
    """Pairs (the page's detection, ours) where ours has its label, the box of highest IoU among
    that label's (random-weight region detectors give one box to several classes) above the
    bound, and a score within it; unmatched detections are left out."""
    min_iou, max_score_diff, _ = AGREEMENT[delegate]
    pairs = []
    for detection in found:
        same = [mine for mine in ours if mine.label == detection["label"]]
        if not same:
            continue
        overlap = iou_matrix(np.array([detection["box"]], np.float32), np.array([m.box for m in same], np.float32))[0]
        best = max(range(len(same)), key=lambda i: (round(float(overlap[i]), 3), -abs(same[i].score - detection["score"])))
        if overlap[best] >= min_iou and abs(detection["score"] - same[best].score) <= max_score_diff:
            pairs.append((detection, same[best]))
    return pairs


def _agree(found: list[dict], ours: list, delegate: str, tally: list[int]) -> list[tuple[dict, object]]:
    """On the CPU every detection matches (and the counts are equal). On the GPU, in half
    precision, a near tie between two classes can flip: ``tally`` ([matched, total]) adds up
    for the test to bound over all images."""
    pairs = _matches(found, ours, delegate)
    if delegate == "cpu":
        assert len(found) == len(ours) and len(pairs) == len(found), (found, ours)
    tally[0] += len(pairs)
    tally[1] += max(len(found), len(ours))
    return pairs


def _gpu_agreement(tally: list[int], delegate: str) -> None:
    """The GPU runs' share of matched detections, printed, at least 60%: MediaPipe's WebGL
    delegate runs an int8 file with float activations, so a weak detector's near ties go the other
    way more often (8 of 11 matched on the int8 YOLO of this test, all on the others); a broken
    GPU path matches next to none."""
    if delegate == "gpu" and tally[1]:
        print(f"GPU agreement with the runtime's CPU results: {tally[0]} of {tally[1]} detections")
        assert tally[0] >= 0.6 * tally[1]


def _runs(browser_run, job: str):
    output, sources, _ = browser_run
    path, images = sources[job]
    runs = {delegate: output["jobs"][f"{job}_{delegate}"] for delegate in ("cpu", "gpu")}
    for delegate, run in runs.items():
        assert "error" not in run, f"{job} on the {delegate}: {run['error']}"
        assert len(run["results"]) == len(images)
    return path, images, runs


def test_page_needs_nothing_from_outside_and_says_which_delegate_ran(browser_run):
    output, _, artifacts = browser_run
    assert output["outside"] == []  # no CDN, no usage logging: the page works offline
    assert not [line for line in output["console"] if line.startswith("pageerror")]
    delegates = {name: run.get("delegate") for name, run in output["jobs"].items() if "error" not in run}
    print("browser", output["browser"], "WebGPU", output["webgpu"], "WebGL", output["webgl"], delegates)
    assert all(delegate.startswith("CPU") for name, delegate in delegates.items() if name.endswith("_cpu"))
    # a GPU job runs on the GPU where the browser has one, else says it fell back
    for name, run in output["jobs"].items():
        if name.endswith("_gpu") and "error" not in run:
            litert = name.startswith(("rcnn", "fast", "faster", "mask", "generator"))
            has_gpu = output["webgpu"] if litert else output["webgl"]
            assert run["delegate"].startswith("GPU") == has_gpu or "running on the CPU" in run["note"], (name, run)
    for name in output["jobs"]:
        assert (artifacts / f"{name}.png").stat().st_size > 1000


def test_page_refuses_files_it_cannot_run_with_the_reason(browser_run):
    output, _, _ = browser_run
    assert "int8-io" in output["jobs"]["int8_io"]["error"] and "its int8 file" in output["jobs"]["int8_io"]["error"]
    assert "truncated" in output["jobs"]["truncated"]["error"]


def test_page_runs_the_webcam_loop(browser_run):
    """Chromium's fake webcam (a moving test pattern) through the page's own camera loop: the
    video frame reaches MediaPipe (the classifier) and the page's RGB path (Fast R-CNN, whose
    selective search runs on each frame)."""
    output, _, _ = browser_run
    for name, key in (("camera_classifier", "top_k"), ("camera_fast_rcnn", "detections")):
        run = output["jobs"][name]
        assert "error" not in run, run["error"]
        assert run["frame"] == [640, 480] and len(run["results"]) == 3
        assert all(key in result and result["pipeline_ms"] > 0 for result in run["results"])
    for result in output["jobs"]["camera_classifier"]["results"]:
        assert {p["label"] for p in result["top_k"]} == {f"class {k}" for k in range(5)}
        assert sum(p["score"] for p in result["top_k"]) == pytest.approx(1.0, abs=0.05)
    assert all(result["proposals"] > 10 for result in output["jobs"]["camera_fast_rcnn"]["results"])


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
def test_classifier_in_the_browser_agrees_with_the_runtime(browser_run, delegate):
    path, images, runs = _runs(browser_run, "classifier")
    assert runs[delegate]["engine"] == "MediaPipe Tasks"
    classifier = open_pipeline(path, accelerator="cpu", top_k=5)
    for image, theirs in zip(images, runs[delegate]["results"]):
        ours = classifier(image).top_k
        assert theirs["top_k"][0]["label"] == ours[0].label
        by_label = {p.label: p.score for p in ours}
        assert all(abs(p["score"] - by_label[p["label"]]) <= 0.02 for p in theirs["top_k"])


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
@pytest.mark.parametrize("target", ["int8", "fp16"])
def test_detector_in_the_browser_agrees_with_the_runtime(browser_run, target, delegate):
    """MediaPipe's semantics, as tests/test_mediapipe.py compares them: one class per anchor, NMS
    across classes at IoU 0.3; boxes clipped to the image."""
    path, images, runs = _runs(browser_run, f"detector_{target}")
    detector = open_pipeline(path, accelerator="cpu", score_threshold=0.1, agnostic=True, iou_threshold=0.3)
    tally = [0, 0]
    for image, theirs in zip(images, runs[delegate]["results"]):
        for detection in theirs["detections"]:  # MediaPipe does not clip boxes to the image; edgecnn does
            detection["box"] = np.clip(detection["box"], 0, image.shape[0]).tolist()
        _agree(theirs["detections"], detector(image).detections, delegate, tally)
    assert tally[0] >= 6
    _gpu_agreement(tally, delegate)


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
def test_segmenter_in_the_browser_agrees_with_the_runtime(browser_run, delegate):
    path, images, runs = _runs(browser_run, "segmenter")
    segmenter = open_pipeline(path, accelerator="cpu")
    for image, theirs in zip(images, runs[delegate]["results"]):
        ours = segmenter(image).class_map
        assert len(np.unique(ours)) > 1  # a non-constant map: the comparison means something
        assert (np.array(theirs["class_map"]).reshape(ours.shape) == ours).mean() >= AGREEMENT[delegate][2]


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
def test_litert_js_region_detector_agrees_with_the_runtime(browser_run, delegate):
    """The page's own letterbox, Faster R-CNN decoding and NMS (deploy/web/edgecnn) against
    edgecnn.runtime's, on 2x images (the page halves them as the runtime does)."""
    path, images, runs = _runs(browser_run, "faster_rcnn")
    assert runs[delegate]["engine"] == "LiteRT.js"
    detector = open_pipeline(path, accelerator="cpu", score_threshold=0.2)
    tally = [0, 0]
    for image, theirs in zip(images, runs[delegate]["results"]):
        _agree(theirs["detections"], detector(image).detections, delegate, tally)
    assert tally[0] >= 4
    _gpu_agreement(tally, delegate)


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
@pytest.mark.parametrize("job", ["rcnn", "fast_rcnn"])
def test_litert_js_proposal_detectors_agree_with_the_runtime(browser_run, job, delegate):
    """R-CNN (each proposal warped and classified alone) and Fast R-CNN (the proposals beside the
    image) on the page's own selective search: the same detections as edgecnn.runtime's."""
    path, images, runs = _runs(browser_run, job)
    assert runs[delegate]["engine"] == "LiteRT.js"
    threshold = RCNN_THRESHOLD if job == "rcnn" else 0.2
    detector = open_pipeline(path, accelerator="cpu", score_threshold=threshold)
    tally = [0, 0]
    for image, theirs in zip(images, runs[delegate]["results"]):
        assert theirs["proposals"] == len(selective_search(image))
        _agree(theirs["detections"], detector(image).detections, delegate, tally)
    assert tally[0] >= 4
    _gpu_agreement(tally, delegate)


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
def test_litert_js_mask_rcnn_agrees_with_the_runtime(browser_run, delegate):
    path, images, runs = _runs(browser_run, "mask_rcnn")
    segmenter = open_pipeline(path, accelerator="cpu", score_threshold=0.2)
    compared, tally = 0, [0, 0]
    for image, theirs in zip(images, runs[delegate]["results"]):
        for instance, mine in _agree(theirs["instances"], segmenter(image).instances, delegate, tally):
            mask = np.array(instance["mask"], bool).reshape(mine.mask.shape)
            assert (mask == mine.mask).mean() >= AGREEMENT[delegate][2]
            compared += int(mine.mask.any())
    assert compared >= 2
    _gpu_agreement(tally, delegate)


@pytest.mark.parametrize("delegate", ["cpu", "gpu"])
def test_litert_js_generator_agrees_with_the_runtime(browser_run, delegate):
    path, images, runs = _runs(browser_run, "generator")
    translator = open_pipeline(path, accelerator="cpu")
    for image, theirs in zip(images, runs[delegate]["results"]):
        ours = translator(image).image.astype(int)
        picture = np.array(theirs["image"]["data"]).reshape(ours.shape)
        assert np.abs(picture - ours).max() <= 3 and np.abs(picture - ours).mean() < 0.5
        assert ours.std() > 1  # a picture, not a flat colour: the comparison means something


def test_page_proposes_and_warps_exactly_as_the_runtime(tmp_path):
    """deploy/web/edgecnn/proposals.js in Node.js against edgecnn.runtime.selective_search, box for
    box and in the same order, on shapes, photos, a noise image and two larger than the search's
    256 pixels (its area resize); R-CNN's region warps byte for byte, inside and across the edge."""
    missing = _missing_node()
    if missing:
        _skip_or_fail(missing)
    rng = np.random.default_rng(0)
    images = shapes(96, 3) + photos(96) + [rng.integers(0, 256, (300, 410, 3), dtype=np.uint8),
                                           cv2.resize(photos(64)[0], (517, 389), interpolation=cv2.INTER_LINEAR)]
    warps = [{"image": 0, "box": [10.5, 7.25, 60.0, 80.0], "height": 32, "width": 24, "context": 0.1},
             {"image": 5, "box": [-20.0, -10.0, 30.0, 400.0], "height": 48, "width": 48, "context": 0.2}]
    given = {"images": [{"width": i.shape[1], "height": i.shape[0], "rgb": base64.b64encode(i.tobytes()).decode()}
                        for i in images], "warps": warps}
    (tmp_path / "in.json").write_text(json.dumps(given))
    result = subprocess.run(["node", str(WEB / "test" / "proposals.mjs"), str(tmp_path / "in.json"),
                             str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads((tmp_path / "out.json").read_text())
    for image, theirs in zip(images, output["proposals"]):
        ours = selective_search(image)
        assert len(ours) > 20
        np.testing.assert_array_equal(np.array(theirs, np.float32).reshape(-1, 4), ours)
    for warp, theirs in zip(warps, output["warps"]):
        ours = warp_region(images[warp["image"]], warp["box"], (warp["height"], warp["width"]), warp["context"])
        assert ours.std() > 1
        np.testing.assert_array_equal(np.frombuffer(base64.b64decode(theirs), np.uint8).reshape(ours.shape), ours)
