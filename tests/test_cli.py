"""The `edgecnn` command: models, summary, errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

import edgecnn
from edgecnn.cli.main import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_summary_reproduces_the_textbook_alexnet_table(capsys):
    code, out, _ = _run(capsys, "summary", "alexnet", "--input-size", "227", "227", "3", "--json")
    assert code == 0
    document = json.loads(out)
    shapes = [(layer["name"], layer["output_shape"]) for layer in document["layers"]]
    assert shapes == [
        ("image", [227, 227, 3]),
        ("conv1", [55, 55, 96]), ("pool1", [27, 27, 96]), ("norm1", [27, 27, 96]),
        ("conv2", [27, 27, 256]), ("pool2", [13, 13, 256]), ("norm2", [13, 13, 256]),
        ("conv3", [13, 13, 384]), ("conv4", [13, 13, 384]), ("conv5", [13, 13, 256]), ("pool3", [6, 6, 256]),
        ("fc6", [4096]), ("fc7", [4096]), ("fc8", [1000]),
    ]
    assert document["total_params"] == sum(layer["params"] for layer in document["layers"])
    conv1 = document["layers"][1]
    assert (conv1["kernel"], conv1["stride"], conv1["padding"], conv1["params"]) == (11, 4, [0, 0], 34_944)


def test_summary_table_text(capsys):
    code, out, _ = _run(capsys, "summary", "test_resnet")
    assert code == 0
    assert "conv1" in out and "[16x16x8]" in out and "total parameters:" in out


def test_models_json_lists_the_zoo_with_parameter_counts(capsys):
    code, out, _ = _run(capsys, "models", "--task", "classification", "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["name"] for r in records] == edgecnn.list_models("classification")
    by_name = {r["name"]: r for r in records}
    assert by_name["vgg16"]["params"] == 138_357_544 and by_name["resnet50"]["task"] == "classification"
    # second call answers from the cache without building anything
    code, out_again, err = _run(capsys, "models", "--task", "classification", "--json")
    assert json.loads(out_again) == records and "counting" not in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["summary", "resnet5"], "Did you mean 'resnet50'"),
        (["summary", "alexnet", "--input-size", "32", "32", "3"], "too small"),
        (["models", "--task", "generation", "--json"], None),
    ],
)
def test_errors_are_one_paragraph_with_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    if message is None:  # a task filter, not an error
        assert code == 0 and {"pix2pix", "cyclegan"} <= {model["name"] for model in json.loads(out)}
        return
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_console_script_runs_and_reports_bad_input():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "summary", "nope"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 2 and "Unknown model 'nope'" in result.stderr
    result = subprocess.run([sys.executable, "-m", "edgecnn.cli.main", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and edgecnn.__version__ in result.stdout


def _options():
    """(command, option, action) for every option of every command."""
    from edgecnn.cli.main import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield " ".join(path), "/".join(action.option_strings) or action.dest, action

    return list(walk(build_parser(), ["edgecnn"]))


def test_every_option_has_help_that_states_its_default():
    missing = []
    for command, option, action in _options():
        shown = action.help or ""
        if not shown:
            missing.append(f"{command} {option}: no help")
        elif action.default not in (None, False, argparse.SUPPRESS) and "default" not in shown:
            missing.append(f"{command} {option}: default {action.default!r} not stated")
    assert len(_options()) > 60 and missing == [], missing


def test_recipes_lists_every_packaged_recipe_and_a_wrong_name_gets_the_closest(capsys):
    from edgecnn.training.recipe import PACKAGED_RECIPES

    code, out, _ = _run(capsys, "recipes", "--json")
    listed = json.loads(out)
    assert code == 0 and sorted(r["name"] for r in listed) == sorted(p.stem for p in PACKAGED_RECIPES.glob("*.yaml"))
    assert {r["name"]: r["task"] for r in listed}["shapes_yolo"] == "detection"
    assert all(r["description"] and r["model"] for r in listed)
    code, out, _ = _run(capsys, "recipes", "--task", "segmentation")
    assert code == 0 and "shapes_unet" in out and "shapes_yolo" not in out
    code, _, err = _run(capsys, "train", "shapes_yol", "--out", "unused")
    assert code == 2 and "Closest packaged recipes: shapes_yolo" in err and "edgecnn recipes" in err
