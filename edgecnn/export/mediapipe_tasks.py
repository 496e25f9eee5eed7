"""Ask MediaPipe Tasks (the task engine Android, iOS and the web run) to open and run a .tflite.

mediapipe never enters edgecnn's environments: every mediapipe wheel requires
opencv-contrib-python, a second ``cv2`` beside edgecnn's opencv-python-headless. So MediaPipe
runs in its own Python, found in this order: ``$EDGECNN_MEDIAPIPE_PYTHON``; this interpreter,
if mediapipe happens to be importable here; the environment at
``~/.cache/edgecnn/venvs/mediapipe`` (made once by the user, or by the test suite):

    python -m venv ~/.cache/edgecnn/venvs/mediapipe
    ~/.cache/edgecnn/venvs/mediapipe/bin/pip install mediapipe==1.2.2

``mediapipe_probe.py`` (a standalone script) runs there and answers in JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError

PYTHON_VARIABLE = "EDGECNN_MEDIAPIPE_PYTHON"
DEFAULT_ENVIRONMENT = Path("~/.cache/edgecnn/venvs/mediapipe").expanduser()
PROBE = Path(__file__).with_name("mediapipe_probe.py")
TASKS = ("classification", "detection", "segmentation")
TIMEOUT_S = 300


def mediapipe_python() -> str | None:
    """The Python that has mediapipe (see the module's docstring), or None."""
    configured = os.environ.get(PYTHON_VARIABLE)
    if configured:
        return configured if Path(configured).exists() else None
    if importlib.util.find_spec("mediapipe") is not None:
        return sys.executable
    default = DEFAULT_ENVIRONMENT / "bin" / "python"
    return str(default) if default.exists() else None


def run_mediapipe(model: str | os.PathLike, task: str, images: list[str | os.PathLike] = (), *,
                  score_threshold: float = 0.25, max_results: int = -1, out_dir: str | os.PathLike | None = None,
                  python: str | None = None) -> dict[str, Any]:
    """Open ``model`` with MediaPipe's ImageClassifier / ObjectDetector / ImageSegmenter (by
    ``task``) and run it on ``images`` (.npy RGB arrays or image files). Returns the probe's
    JSON: ``opened``, ``error`` (why it did not open), ``results`` per image and ``run_error``
    (why a frame failed after the file opened; the results then stop at that frame)."""
    if task not in TASKS:
        raise EdgeCNNError(f"MediaPipe Tasks has no task for '{task}' models.", f"It runs {', '.join(TASKS)}.")
    python = python or mediapipe_python()
    if python is None:
        raise EdgeCNNError("No Python with mediapipe was found.",
                           f"Make one: python -m venv {DEFAULT_ENVIRONMENT} && {DEFAULT_ENVIRONMENT}/bin/pip install "
                           f"mediapipe (or set {PYTHON_VARIABLE} to a Python that has it).")
    request = {"model": str(model), "task": task, "images": [str(image) for image in images],
               "score_threshold": score_threshold, "max_results": max_results,
               "out": str(out_dir) if out_dir is not None else None}
    command = [python, str(PROBE), json.dumps(request)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise EdgeCNNError(f"MediaPipe did not answer within {TIMEOUT_S} s.", "Run the probe by hand to see why.") \
            from error
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:  # a native abort (MediaPipe CHECK failures end the process)
        tail = (result.stderr or "").strip().splitlines()[-3:]
        return {"opened": False, "error": f"MediaPipe ended with exit status {result.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def mediapipe_opens(model: str | os.PathLike, task: str | None) -> dict[str, Any]:
    """What `edgecnn inspect` says about MediaPipe: checked (bool), opened (bool), and why not."""
    if task not in TASKS:
        return {"checked": False, "reason": f"no MediaPipe task for {task or 'a file of unknown task'}"}
    python = mediapipe_python()
    if python is None:
        return {"checked": False, "reason": f"mediapipe not found (set {PYTHON_VARIABLE} or make "
                                            f"{DEFAULT_ENVIRONMENT})"}
    answer = run_mediapipe(model, task, python=python)
    opened = bool(answer.get("opened"))
    return {"checked": True, "opened": opened, "task": task, "mediapipe": answer.get("mediapipe"),
            "python": python, "reason": "opens" if opened else answer.get("error")}
