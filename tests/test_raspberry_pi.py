"""The Raspberry Pi install, under arm64 emulation: a Debian bookworm arm64 root (debootstrap,
qemu-user-static through binfmt_misc; cached under ~/.cache/edgecnn/pi), edgecnn installed
there from the working tree by deploy/raspberry-pi/install.sh as a Pi owner would (base
install: ai-edge-litert's aarch64 wheel, no TensorFlow), then `edgecnn predict` and
`edgecnn benchmark` on an int8 detector, segmenter and classifier made here; the results must
equal the x86 runtime's on the same files.

Needs root, Linux and the prerequisites of deploy/raspberry-pi/arm64-emulation.sh (CI runs it);
elsewhere the test is skipped with the reason, or fails where EDGECNN_REQUIRE_PI_EMULATION=1.
Known trap (measured here before): LiteRT crashes unless the root sees an ARM-looking
/proc/cpuinfo, so a Pi 5's is bind-mounted over it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgecnn
from edgecnn.runtime.detection import iou_matrix

pytestmark = pytest.mark.network
REPO = Path(__file__).parent.parent
CACHE = Path("~/.cache/edgecnn/pi").expanduser()
ROOT = CACHE / "bookworm-arm64"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = "python3,python3-venv,python3-pip,python3-numpy,ca-certificates"
PI5_CPUINFO = "".join(f"""processor\t: {k}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

""" for k in range(4)) + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n"


def _unavailable() -> str | None:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return f"arm64 emulation is set up for x86-64 Linux hosts ({sys.platform} {os.uname().machine} here)"
    if os.geteuid() != 0:
        return "chroot and mounts need root"
    if shutil.which("debootstrap") is None:
        return "debootstrap is missing: run deploy/raspberry-pi/arm64-emulation.sh"
    status = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not status.exists() or "enabled" not in status.read_text():
        return "qemu-aarch64 is not registered with binfmt_misc: run deploy/raspberry-pi/arm64-emulation.sh"
    return None


@pytest.fixture(scope="module")
def pi_root() -> Path:
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("EDGECNN_REQUIRE_PI_EMULATION") == "1":
            pytest.fail(f"arm64 emulation required (EDGECNN_REQUIRE_PI_EMULATION=1) but {reason}")
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "root.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ROOT / "usr" / "bin" / "python3").exists():
            partial = CACHE / "bookworm-arm64.partial"
            shutil.rmtree(partial, ignore_errors=True)
            start = time.perf_counter()
            built = subprocess.run(["debootstrap", "--arch", "arm64", "--variant=minbase", f"--include={PACKAGES}",
                                    "bookworm", str(partial), MIRROR], capture_output=True, text=True, timeout=1800)
            assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
            partial.rename(ROOT)
            (CACHE / "root_seconds").write_text(f"{time.perf_counter() - start:.0f}")
    shutil.copy("/etc/resolv.conf", ROOT / "etc" / "resolv.conf")  # the host's DNS
    # pip in the root trusts what the host's pip trusts (this network's TLS goes through its CA)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", ROOT / "etc" / "ssl" / "certs" / "host-ca.crt")
    (CACHE / "cpuinfo").write_text(PI5_CPUINFO)
    return ROOT


@contextmanager
def mounted(root: Path):
    """/proc, with a Pi 5's cpuinfo over the host's (LiteRT reads it to pick kernels and aborts
    on the x86 one), for as long as the chroot runs; unmounted whatever happens."""
    proc = root / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        subprocess.run(["mount", "--bind", str(CACHE / "cpuinfo"), str(proc / "cpuinfo")], check=True)
        try:
            yield
        finally:
            subprocess.run(["umount", str(proc / "cpuinfo")], check=False)
    finally:
        subprocess.run(["umount", str(proc)], check=False)


def in_root(root: Path, *command: str, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    base = {"HOME": "/root", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PIP_CERT": "/etc/ssl/certs/host-ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "LC_ALL": "C.UTF-8"}
    return subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in {**base, **env}.items()),
                           *command], capture_output=True, text=True, timeout=timeout)


def _models(folder: Path, detector: Path) -> dict[str, Path]:
    """int8 files of a detector (trained briefly, so it finds things), a segmenter and a
    classifier (seeded, untrained: their outputs only have to be the same on both machines)."""
    import tf_keras as keras

    def seeded(name: str, **overrides):
        keras.utils.set_random_seed(1)  # weights independent of what ran before
        return edgecnn.create_model(name, **overrides)

    made = {"detection": (detector, None, None),
            "segmentation": (seeded("test_unet"), ["background", "shape", "edge"], "builtin:shapes"),
            "classification": (seeded("test_vgg", num_classes=5), [f"class {k}" for k in range(5)],
                               "builtin:digits")}
    files = {}
    for task, (model, labels, calibration) in made.items():
        files[task] = folder / f"{task}_int8.tflite"
        edgecnn.convert(model, "int8", out=files[task], task=task, labels=labels, calibration=calibration)
    return files


def _images(folder: Path, size: int) -> Path:
    from edgecnn.data.shapes import generate_sample

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index in range(4):
        cv2.imwrite(str(folder / f"shape_{index}.png"), cv2.cvtColor(generate_sample(rng, size).image,
                                                                      cv2.COLOR_RGB2BGR))
    return folder


def _output_step(model: Path, keras_output: int = 0) -> float:
    """The quantization step of the int8 tensor behind the file's (dequantized) output that holds
    the Keras model's output ``keras_output``."""
    from edgecnn.export.device_heads import keras_output_order
    from edgecnn.runtime.modelfile import tflite_schema

    data = model.read_bytes()
    graph = tflite_schema().Model.GetRootAs(data, 0).Subgraphs(0)
    output = graph.Outputs(keras_output_order(data).index(keras_output))
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        if operator.Outputs(0) == output:
            return float(graph.Tensors(operator.Inputs(0)).Quantization().Scale(0))
    raise AssertionError("no operator writes the output")


def _compare_detections(arm: list[dict], x86: list[dict], logit_step: float, threshold: float = 0.1) -> None:
    """The same int8 detector on both machines, up to one step of its score logits (the rounding
    that _compare describes): a detection whose logit is within a step of the threshold's may be
    on one side only, and where two points of an object tie within a step, NMS may keep either
    (seen: boxes of IoU 0.7 at the same score, with the SiLU test detector). Every other detection
    must have a twin of the same label over the same object (IoU >= 0.5) within one logit step."""

    def logit(score: float) -> float:
        return float(np.log(score / (1.0 - score)))

    for one, other in ((arm, x86), (x86, arm)):
        for detection in one:
            if logit(detection["score"]) < logit(threshold) + logit_step * 1.001:
                continue
            twins = [d for d in other if d["label"] == detection["label"]]
            assert twins, (detection, other)
            overlap = iou_matrix(np.array([detection["box"]], np.float32),
                                 np.array([d["box"] for d in twins], np.float32))[0]
            match = twins[int(overlap.argmax())]
            assert overlap.max() >= 0.5, (detection, twins)
            assert abs(logit(detection["score"]) - logit(match["score"])) <= logit_step * 1.001, (detection, match)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class PiEmulationFigures(UserWarning):
    """What the emulation test measured (shown in the warnings summary)."""


def test_pi_install_predict_and_benchmark_under_arm64_emulation(pi_root, shapes_detector, tmp_path):
    from edgecnn.cli.main import main

    built = CACHE / "root_seconds"
    root_s = f"built by debootstrap in {built.read_text()} s" if built.exists() else "from the cache"
    built.unlink(missing_ok=True)

    work = pi_root / "work"
    shutil.rmtree(work, ignore_errors=True)
    source = pi_root / "opt" / "edgecnn-src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    # the working tree as a checkout would have it: tracked and new files, nothing ignored
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    models = _models(work / "models", shapes_detector)
    # the segmenter's images at its input size, so its class map is the argmax of its logits grid
    images = {"detection": _images(work / "images", 96), "classification": _images(work / "images", 96),
              "segmentation": _images(work / "images_32", 32)}
    with mounted(pi_root):
        start = time.perf_counter()
        installed = in_root(pi_root, "bash", "/opt/edgecnn-src/deploy/raspberry-pi/install.sh", "/opt/edgecnn-src",
                            EDGECNN_NO_APT="1", EDGECNN_VENV="/opt/edgecnn")
        install_s = time.perf_counter() - start
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        assert "NumPy 1." in installed.stdout and "numpy<2" in installed.stderr  # the system's NumPy 1 is kept
        assert in_root(pi_root, "/opt/edgecnn/bin/python", "-c", "import tensorflow").returncode != 0
        arch = in_root(pi_root, "/opt/edgecnn/bin/python", "-c", "import platform; print(platform.machine())")
        assert arch.stdout.strip() == "aarch64"
        latencies = {}
        for task, model in models.items():
            out = f"/work/out_{task}"
            ran = in_root(pi_root, "/opt/edgecnn/bin/edgecnn", "predict", f"/work/models/{model.name}",
                          f"/work/{images[task].name}",
                          "--out", out, "--accelerator", "cpu", "--score-threshold", "0.1")
            assert ran.returncode == 0, ran.stderr[-3000:]
            bench = in_root(pi_root, "/opt/edgecnn/bin/edgecnn", "benchmark", f"/work/models/{model.name}",
                            "--accelerator", "cpu", "--runs", "5", "--warmup", "1", "--json")
            assert bench.returncode == 0, bench.stderr[-3000:]
            report = json.loads(bench.stdout)
            assert report["backend"] == "litert"
            latencies[task] = report["invoke_ms"]["p50"]
            # the same files on x86
            local = tmp_path / f"x86_{task}"
            assert main(["predict", str(model), str(images[task]), "--out", str(local), "--accelerator", "cpu",
                         "--score-threshold", "0.1"]) == 0
            _compare(task, _records(pi_root / out.lstrip("/") / "predictions.jsonl"),
                     _records(local / "predictions.jsonl"), pi_root / out.lstrip("/"), local, model, images[task])
    # a warning, so the figures show in the test summary of any run (print is captured there)
    warnings.warn(PiEmulationFigures(
        f"arm64 emulation: root {root_s}, install.sh {install_s:.0f} s; invoke p50 under qemu (not a Pi's speed): "
        + ", ".join(f"{task} {ms:.1f} ms" for task, ms in latencies.items())))


def _compare(task: str, arm: list[dict], x86: list[dict], arm_out: Path, x86_out: Path, model: Path,
             images: Path) -> None:
    """arm64 against x86 on the same int8 file. Measured here: XNNPACK's int8 kernels round a
    few requantizations differently on the two (the same segmenter's logits differed by exactly
    one output step on 1,800 of 3,072 values), so where two classes are within one step the
    argmax may differ; anything more is a failure."""
    from edgecnn.runtime import open as open_pipeline

    assert [r["source"].rsplit("/", 1)[-1] for r in arm] == [r["source"].rsplit("/", 1)[-1] for r in x86]
    assert {r["backend"] for r in arm} == {"litert"}
    if task == "detection":  # the shapes images do have detections to compare
        assert sum(len(r["detections"]) for r in x86) >= 4
    for a, b in zip(arm, x86):
        if task == "classification":
            assert a["top_k"][0]["label"] == b["top_k"][0]["label"]
            by_label = {p["label"]: p["score"] for p in b["top_k"]}
            assert max(abs(p["score"] - by_label[p["label"]]) for p in a["top_k"]) <= 0.01
        elif task == "detection":
            _compare_detections(a["detections"], b["detections"], _output_step(model, keras_output=1))
        else:
            name = Path(a["source"]).stem + f"_{a['frame']}_classes.png"
            arm_map = cv2.imread(str(arm_out / name), cv2.IMREAD_UNCHANGED)
            x86_map = cv2.imread(str(x86_out / name), cv2.IMREAD_UNCHANGED)
            assert arm_map is not None and arm_map.shape == x86_map.shape == (32, 32)
            segmenter = open_pipeline(model, accelerator="cpu")
            segmenter(cv2.cvtColor(cv2.imread(str(images / Path(a["source"]).name)), cv2.COLOR_BGR2RGB))
            logits = np.sort(segmenter.runner.invoke()[0][0], axis=-1)
            margin = logits[..., -1] - logits[..., -2]
            step = _output_step(model)
            differ = arm_map != x86_map
            assert differ.mean() <= 0.01 and np.all(margin[differ] <= step * 1.001), (differ.sum(), step)
