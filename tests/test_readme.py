"""Every command in the README runs: the ```bash and ```python blocks are extracted and run in
order in one folder, as a newcomer would type them, with short training settings added (the
README's own figures come from the full settings). The set-up block is checked against .ci/run,
which runs the test command itself; its quickstart is run by tests/test_quickstart.py with the
same short settings."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# short settings per command, appended to what the README says (full settings take minutes to hours)
SHORT_TRAINING = ["--set", "training.epochs=1", "--set", "optimization.pruning.epochs=1",
                  "--set", "optimization.qat.epochs=1"]
SHORT = {
    "shapes_yolo": [*SHORT_TRAINING, "--set", "model.overrides.width_multiplier=0.25",
                    "--set", "model.overrides.neck_channels=16"],
    "coco_yolo": [*SHORT_TRAINING, "--set", "model.overrides.width_multiplier=0.25",
                  "--set", "model.overrides.neck_channels=16", "--set", "data.input_size=[64,64,3]"],
    "digits_vgg": SHORT_TRAINING,
    "shapes_unet": [*SHORT_TRAINING, "--set", "model.overrides.width_multiplier=0.0625",
                    "--set", "model.overrides.depth=2", "--set", "data.input_size=[64,64,3]"],
    "shapes_pix2pix": ["--set", "training.epochs=1", "--set", "model.overrides.width_multiplier=0.0625",
                       "--set", "optimization.qat.epochs=1"],
    "shapes_pix2pix_edges": ["--set", "training.epochs=1", "--set", "model.overrides.width_multiplier=0.0625",
                             "--set", "optimization.qat.epochs=1"],
    "shapes_judge": ["--set", "training.epochs=1", "--set", "model.overrides.width_multiplier=0.0625",
                     "--set", "data.limit=200"],
}
QUICKSTART_SHORT = ["--train-images", "16", "--val-images", "4", "--set", "training.epochs=1",
                    "--set", "training.batch_size=8", "--set", "model.overrides.width_multiplier=0.25",
                    "--set", "model.overrides.neck_channels=16", "--set", "optimization.pruning.epochs=1",
                    "--set", "optimization.qat.epochs=1"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def commands(block: str) -> list[str]:
    """Shell commands of a block: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_setup_block_is_what_ci_runs():
    setup, *_ = blocks("bash")
    install, test = commands(setup)
    ci = (REPO / ".ci" / "run").read_text().replace(" --quiet", "")  # CI keeps pip's log short
    assert test in ci.splitlines(), f"README's test command {test!r} is not .ci/run's"
    steps = [step.strip() for step in install.split("&&")]
    assert steps[0] == "python3 -m venv .venv" and "python3 -m venv .venv" in ci
    assert steps[1] in ci and steps[2] in ci  # the same install and software GPU step as CI
    assert steps[3] == ".venv/bin/edgecnn quickstart --out runs/quickstart"
    quickstart_test = (REPO / "tests" / "test_quickstart.py").read_text()
    assert all(option in quickstart_test for option in QUICKSTART_SHORT[::2])  # run there, shortened alike


def test_software_gpu_step_is_skipped_where_apt_is_missing(tmp_path):
    """macOS or a Linux without apt: the step says what it skips and exits 0, so the set-up's
    `&&` chain goes on to the quickstart."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "uname", "id", "dirname", "cat", "mkdir"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (tools / tool).symlink_to(found)
    result = subprocess.run([str(tools / "bash"), str(REPO / "deploy" / "software-gpu.sh")], capture_output=True,
                            text=True, env={"PATH": str(tools), "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "software GPU skipped" in result.stderr and "apt-get" in result.stderr


def test_every_readme_command_runs(tmp_path, monkeypatch):
    """The bash blocks after the set-up, then the python blocks, in one folder."""
    from edgecnn.cli.main import main

    monkeypatch.chdir(tmp_path)
    ran = []
    for block in blocks("bash")[1:]:
        for command in commands(block):
            argv = shlex.split(command, comments=True)  # a trailing "# ..." explains, as in a shell
            assert argv[0] == "edgecnn", f"README command {command!r} is not an edgecnn command"
            argv = argv[1:]
            if argv[0] == "train":
                argv += SHORT.get(argv[1], SHORT_TRAINING)
            assert main(argv) == 0, command
            ran.append(argv[0])
    assert {"data", "train", "convert", "eval", "predict", "benchmark", "inspect", "summary"} <= set(ran)
    assert list(Path("runs/mine/predicted").glob("*.png")) and list(Path("runs/unet/predicted").glob("*.png"))
    # the run's classes, which convert wrote into the file
    assert Path("runs/mine/labels.txt").read_text().split() == ["circle", "rectangle", "triangle", "star"]
    for index, block in enumerate(blocks("python")):
        result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path,
                                timeout=900)
        assert result.returncode == 0, f"python block {index} failed:\n{result.stderr[-3000:]}"


def test_readme_names_no_issue_and_only_options_that_exist():
    """The README speaks of the product (no issue numbers or work history), and every option it
    gives an `edgecnn` command (in code blocks and inline code) is one that command takes."""
    import argparse

    from edgecnn.cli.main import build_parser

    text = README.read_text()
    assert not re.search(r"\bissues? #?\d+|\bsessions? \d+|this session", text, flags=re.I)
    commands_and_options: dict[str, set[str]] = {}
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options = {o for a in sub._actions for o in a.option_strings}
                for nested in sub._actions:  # `data shapes`, `data pairs`
                    if isinstance(nested, argparse._SubParsersAction):
                        for kind, subsub in nested.choices.items():
                            commands_and_options[f"{name} {kind}"] = {o for a in subsub._actions
                                                                     for o in a.option_strings}
                commands_and_options[name] = options
    uses = re.findall(r"edgecnn ((?:data )?[a-z]+)([^`\n]*)", text)
    checked, unknown = 0, []
    for command, rest in uses:
        if command not in commands_and_options:
            continue  # prose such as "edgecnn quickstart is ..." names no options
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest.split("#")[0]):
            checked += 1
            if option not in commands_and_options[command]:
                unknown.append(f"edgecnn {command} {option}")
    assert checked >= 20 and unknown == [], unknown
