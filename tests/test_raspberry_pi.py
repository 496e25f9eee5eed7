"""The Raspberry Pi install, under arm64 emulation: a Debian bookworm arm64 root (debootstrap,
qemu-user-static through binfmt_misc; cached under ~/.cache/edgecnn/pi), edgecnn installed
there from the working tree by deploy/raspberry-pi/install.sh as a Pi owner would (base
install: ai-edge-litert's aarch64 wheel, no TensorFlow), then `edgecnn predict` and
`edgecnn benchmark` on an int8 detector, segmenter and classifier made here, compared with the
x86 runtime on the same files.

What the comparison may assume, measured on an AMD EPYC x86 host against qemu's arm64:
- The same int8 file gives bit-identical outputs on one x86 host, run twice and with 1 or 2
  threads; two trainings of the test detector (same seed, same host, separate processes) gave
  bit-identical weights and int8 files. So a difference between the two machines is the CPUs'
  int8 kernels, which round requantizations differently (x86 hosts differ among themselves too:
  XNNPACK picks kernels by instruction set), not the training.
- Those differences, in steps of each output's int8 quantization, over 8 shapes images: the
  test detector's 2,688 score logits 48% equal, 86% within 1 step, 98.7% within 2, all within 4;
  its box log-distances 86% equal, all within 1; the segmenter's 24,576 logits 95% equal, all
  within 2; the classifier's logits all within 1.
So the test asserts the raw outputs within MAX_STEPS steps everywhere and within 2 steps for at
least SHARE_WITHIN_2 of the elements, and compares results only where a difference of the size
this run measured (D steps) cannot change them: detections whose score logit lies more than D
steps above the threshold's must have a twin (same label, IoU >= 0.5, within D steps), a
classifier's top-1 must agree where its margin exceeds 2D steps, a segmenter's class where its
margin does. Nothing depends on how well the detector trained or on which x86 CPU runs it.

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


def in_root(root: Path, *command: str, timeout: int = 900, userspec: str | None = None,
            **env: str) -> subprocess.CompletedProcess:
    """``command`` inside the root, as root or as ``userspec`` (numeric UID:GID)."""
    base = {"HOME": "/root", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PIP_CERT": "/etc/ssl/certs/host-ca.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "LC_ALL": "C.UTF-8"}
    user = [f"--userspec={userspec}"] if userspec else []
    return subprocess.run(["chroot", *user, str(root), "/usr/bin/env", "-i",
                           *(f"{k}={v}" for k, v in {**base, **env}.items()), *command],
                          capture_output=True, text=True, timeout=timeout)


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


def _copy_checkout(destination: Path) -> Path:
    """The working tree as a clone would have it: tracked and new files, nothing ignored."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


def _user(root: Path, name: str) -> tuple[int, int]:
    """(uid, gid) of ``name`` in the root, made with its home on first use."""
    def lookup():
        for line in (root / "etc" / "passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2]), int(fields[3])
        return None

    if lookup() is None:
        made = in_root(root, "useradd", "--create-home", "--shell", "/bin/bash", name)
        assert made.returncode == 0, made.stderr
    return lookup()


def _install_as_user_with_service(root: Path, owner: tuple[int, int], home: Path) -> None:
    """What the guide tells a Pi owner with a clone: `bash deploy/raspberry-pi/install.sh
    --service MODEL` as themselves, with no argument. The checkout it sits in is installed (base
    install only) into ~/edgecnn-venv, and the unit and camera.env are written for that user
    with the paths the install used (here into the home, as there is no sudo in the root)."""
    user = home.name
    ran = in_root(root, "bash", f"/home/{user}/edgecnn/deploy/raspberry-pi/install.sh", "--service",
                  f"/home/{user}/models/detector_int8.tflite", userspec=f"{owner[0]}:{owner[1]}", HOME=f"/home/{user}",
                  EDGECNN_NO_APT="1", EDGECNN_UNIT_DIR=f"/home/{user}/unit", EDGECNN_CONFIG_DIR=f"/home/{user}/etc")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert f"installing the checkout at /home/{user}/edgecnn" in ran.stderr
    venv = f"/home/{user}/edgecnn-venv"
    assert (root / venv.lstrip("/") / "bin" / "edgecnn").exists()
    assert in_root(root, f"{venv}/bin/python", "-c", "import tensorflow").returncode != 0
    unit = (home / "unit" / "edgecnn-camera.service").read_text()
    config = (home / "etc" / "camera.env").read_text()
    assert f"User={user}\n" in unit and f"ExecStart={venv}/bin/edgecnn predict" in unit
    assert f"MODEL=/home/{user}/models/detector_int8.tflite\n" in config and f"OUT=/home/{user}/edgecnn-runs/" in config
    assert "/home/pi" not in unit + config and "User=pi" not in unit


def _images(folder: Path, size: int) -> Path:
    from edgecnn.data.shapes import generate_sample

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index in range(4):
        cv2.imwrite(str(folder / f"shape_{index}.png"), cv2.cvtColor(generate_sample(rng, size).image,
                                                                      cv2.COLOR_RGB2BGR))
    return folder


MAX_STEPS = 8  # raw outputs, x86 against arm64: every element within this many int8 steps
SHARE_WITHIN_2 = 0.9  # and at least this share within 2 steps
# run in the arm64 root and here: each image through the file's own pipeline (as predict runs it),
# then the raw outputs of that very input (the pipeline's Runner, in the Keras model's output order)
RAW_OUTPUTS = """
import sys
from pathlib import Path
import cv2, numpy as np
from edgecnn.runtime import open as open_pipeline
model, folder, out = sys.argv[1:4]
pipeline = open_pipeline(model, accelerator="cpu")
raw = []
for path in sorted(Path(folder).glob("*.png")):
    pipeline(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    raw.append(pipeline.runner.invoke())
np.savez(out, *[np.concatenate([r[k] for r in raw]) for k in range(len(raw[0]))])
"""


def _steps(model: Path) -> list[float]:
    """Per output of the file's Runner: the quantization step of the int8 tensor behind it (the
    float ops of a device head, e.g. SOFTMAX or the box head, are walked back through)."""
    from edgecnn.runtime import load_engine
    from edgecnn.runtime.modelfile import tflite_schema

    graph = tflite_schema().Model.GetRootAs(model.read_bytes(), 0).Subgraphs(0)
    writers = {}
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        writers.update({operator.Outputs(k): operator for k in range(operator.OutputsLength())})
    steps = []
    for info in load_engine(model).outputs:
        tensor = info.index
        while not (graph.Tensors(tensor).Quantization() and graph.Tensors(tensor).Quantization().ScaleLength()):
            tensor = writers[tensor].Inputs(0)
        steps.append(float(graph.Tensors(tensor).Quantization().Scale(0)))
    return steps


def _logit_space(outputs: list[np.ndarray], model: Path) -> list[np.ndarray]:
    """The outputs as the int8 values behind them (dequantized): a classifier's probabilities as
    centred log-probabilities, a detector's (dy, dx, h, w) head as its log-distances."""
    from edgecnn.export.device_heads import BOX_MATRIX
    from edgecnn.runtime.metadata import read_metadata

    kinds = [o.kind for o in read_metadata(model.read_bytes()).outputs]
    converted = []
    for kind, output in zip(kinds, outputs):
        if kind == "probabilities":
            output = np.log(output) - np.log(output).mean(-1, keepdims=True)
        elif kind == "boxes_yxhw_stride":
            output = np.log(np.linalg.solve(BOX_MATRIX, output.reshape(-1, 4).T).T).reshape(output.shape)
        converted.append(output)
    return converted


def _raw_differences(arm: Path, x86: Path, model: Path) -> list[np.ndarray]:
    """|arm64 - x86| per output, in quantization steps."""
    arm_raw, x86_raw = np.load(arm), np.load(x86)
    count = len(arm_raw.files)
    a = _logit_space([arm_raw[f"arr_{k}"] for k in range(count)], model)
    b = _logit_space([x86_raw[f"arr_{k}"] for k in range(count)], model)
    return [np.abs(one - other) / step for one, other, step in zip(a, b, _steps(model))]


def _compare_detections(arm: list[dict], x86: list[dict], logit_step: float, steps: float, threshold: float) -> None:
    """A detection whose score logit lies more than ``steps`` steps above the threshold's is
    above it on the other machine too, so it (or, where NMS kept the other of two boxes whose
    scores tie within ``steps``, that one) must be there: same label, IoU >= 0.5, score logit
    within ``steps``."""

    def logit(score: float) -> float:
        return float(np.log(score / (1.0 - score)))

    margin = steps * logit_step * 1.001 + 1e-6
    for one, other in ((arm, x86), (x86, arm)):
        for detection in one:
            if logit(detection["score"]) <= logit(threshold) + margin:
                continue
            twins = [d for d in other if d["label"] == detection["label"]
                     and abs(logit(d["score"]) - logit(detection["score"])) <= margin]
            overlap = iou_matrix(np.array([detection["box"]], np.float32),
                                 np.array([d["box"] for d in twins], np.float32).reshape(-1, 4))[0]
            assert twins and overlap.max() >= 0.5, (detection, other, steps)


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
    # the guide's first way: a wheel built on the workstation, copied over with deploy/raspberry-pi/
    checkout = _copy_checkout(tmp_path / "checkout")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                            str(work / "pi"), str(checkout)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (work / "pi").glob("edgecnn-*-py3-none-any.whl")
    shutil.copytree(REPO / "deploy" / "raspberry-pi", work / "pi" / "raspberry-pi")
    # the second way: a clone in the home of a user who is not `pi`, installed with no argument
    owner = _user(pi_root, "alice")
    home = pi_root / "home" / "alice"
    shutil.rmtree(home / "edgecnn", ignore_errors=True)
    _copy_checkout(home / "edgecnn")
    models = _models(work / "models", shapes_detector)
    (home / "models").mkdir(exist_ok=True)
    shutil.copy(models["detection"], home / "models" / "detector_int8.tflite")
    for path in [home, *home.rglob("*")]:
        os.chown(path, *owner, follow_symlinks=False)
    # the segmenter's images at its input size, so its class map is the argmax of its logits grid
    images = {"detection": _images(work / "images", 96), "classification": _images(work / "images", 96),
              "segmentation": _images(work / "images_32", 32)}
    thresholds = {"detection": 0.1}
    figures, latencies = {}, {}
    with mounted(pi_root):
        start = time.perf_counter()
        installed = in_root(pi_root, "bash", "/work/pi/raspberry-pi/install.sh", f"/work/pi/{wheel.name}",
                            EDGECNN_NO_APT="1", EDGECNN_VENV="/opt/edgecnn")
        install_s = time.perf_counter() - start
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        assert "NumPy 1." in installed.stdout and "numpy<2" in installed.stderr  # the system's NumPy 1 is kept
        assert f"installing the wheel /work/pi/{wheel.name}" in installed.stderr
        # a bare name is refused, never looked up on an index
        refused = in_root(pi_root, "bash", "/work/pi/raspberry-pi/install.sh", "edgecnn", EDGECNN_NO_APT="1",
                          EDGECNN_VENV="/tmp/never")
        assert refused.returncode == 1 and "not ours" in refused.stderr and not (pi_root / "tmp" / "never").exists()
        _install_as_user_with_service(pi_root, owner, home)
        assert in_root(pi_root, "/opt/edgecnn/bin/python", "-c", "import tensorflow").returncode != 0
        arch = in_root(pi_root, "/opt/edgecnn/bin/python", "-c", "import platform; print(platform.machine())")
        assert arch.stdout.strip() == "aarch64"
        for task, model in models.items():
            out = f"/work/out_{task}"
            threshold = ["--score-threshold", str(thresholds[task])] if task in thresholds else []
            ran = in_root(pi_root, "/opt/edgecnn/bin/edgecnn", "predict", f"/work/models/{model.name}",
                          f"/work/{images[task].name}", "--out", out, "--accelerator", "cpu", *threshold)
            assert ran.returncode == 0, ran.stderr[-3000:]
            raw = in_root(pi_root, "/opt/edgecnn/bin/python", "-c", RAW_OUTPUTS, f"/work/models/{model.name}",
                          f"/work/{images[task].name}", f"/work/raw_{task}.npz")
            assert raw.returncode == 0, raw.stderr[-3000:]
            bench = in_root(pi_root, "/opt/edgecnn/bin/edgecnn", "benchmark", f"/work/models/{model.name}",
                            "--accelerator", "cpu", "--runs", "5", "--warmup", "1", "--json")
            assert bench.returncode == 0, bench.stderr[-3000:]
            report = json.loads(bench.stdout)
            assert report["backend"] == "litert"
            latencies[task] = report["invoke_ms"]["p50"]
            # the same files on x86
            local = tmp_path / f"x86_{task}"
            assert main(["predict", str(model), str(images[task]), "--out", str(local), "--accelerator", "cpu",
                         *threshold]) == 0
            ran = subprocess.run([sys.executable, "-c", RAW_OUTPUTS, str(model), str(images[task]),
                                  str(tmp_path / f"raw_{task}.npz")], capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0, ran.stderr[-3000:]
            differences = _raw_differences(work / f"raw_{task}.npz", tmp_path / f"raw_{task}.npz", model)
            for index, steps in enumerate(differences):
                within_2 = float(np.mean(steps <= 2.001))
                figures[f"{task} output {index}"] = (f"max {steps.max():.1f} steps, {np.mean(steps < 0.01):.1%} equal, "
                                                     f"{within_2:.1%} within 2 steps")
                assert steps.max() <= MAX_STEPS + 0.001 and within_2 >= SHARE_WITHIN_2, (task, index, figures)
            measured = float(np.ceil(max(d.max() for d in differences) - 0.001))
            _compare(task, _records(pi_root / out.lstrip("/") / "predictions.jsonl"),
                     _records(local / "predictions.jsonl"), pi_root / out.lstrip("/"), local, model, images[task],
                     measured, thresholds.get(task))
    # a warning, so the figures show in the test summary of any run (print is captured there)
    warnings.warn(PiEmulationFigures(
        f"arm64 emulation: root {root_s}, install.sh {install_s:.0f} s; invoke p50 under qemu (not a Pi's speed): "
        + ", ".join(f"{task} {ms:.1f} ms" for task, ms in latencies.items())
        + "; raw outputs arm64 vs x86: " + "; ".join(f"{name}: {text}" for name, text in figures.items())))


def _compare(task: str, arm: list[dict], x86: list[dict], arm_out: Path, x86_out: Path, model: Path,
             images: Path, steps: float, threshold: float | None) -> None:
    """arm64 against x86 results, where raw outputs ``steps`` quantization steps apart cannot
    change them (see the module's docstring)."""
    from edgecnn.runtime import open as open_pipeline

    assert [r["source"].rsplit("/", 1)[-1] for r in arm] == [r["source"].rsplit("/", 1)[-1] for r in x86]
    assert {r["backend"] for r in arm} == {"litert"}
    if task == "detection":  # the shapes images do have detections to compare
        assert sum(len(r["detections"]) for r in x86) >= 4
    step = _steps(model)[-1 if task == "detection" else 0]  # the score logits; the logits
    pipeline = open_pipeline(model, accelerator="cpu")
    for a, b in zip(arm, x86):
        if task == "detection":
            _compare_detections(a["detections"], b["detections"], step, steps, threshold)
            continue
        pipeline(cv2.cvtColor(cv2.imread(str(images / Path(a["source"]).name)), cv2.COLOR_BGR2RGB))
        logits = _logit_space(pipeline.runner.invoke(), model)[0][0]
        ranked = np.sort(logits, axis=-1)
        margin = (ranked[..., -1] - ranked[..., -2]) / step
        if task == "classification":
            by_label = {p["label"]: p["score"] for p in b["top_k"]}
            assert max(abs(p["score"] - by_label[p["label"]]) for p in a["top_k"]) <= 0.01
            if margin > 2 * steps + 0.001:
                assert a["top_k"][0]["label"] == b["top_k"][0]["label"], (a, b, margin)
        else:
            name = Path(a["source"]).stem + f"_{a['frame']}_classes.png"
            arm_map = cv2.imread(str(arm_out / name), cv2.IMREAD_UNCHANGED)
            x86_map = cv2.imread(str(x86_out / name), cv2.IMREAD_UNCHANGED)
            assert arm_map is not None and arm_map.shape == x86_map.shape == (32, 32)
            differ = arm_map != x86_map
            assert np.all(margin[differ] <= 2 * steps + 0.001), (differ.sum(), steps)
