"""Options every command shares: --threads, -v, and the defaults shown in --help."""

from __future__ import annotations

import argparse
import logging
import re

import pytest

from napari_liftpose.cli import SUBCOMMANDS, build_parser, main
from napari_liftpose.cli._common import (
    Parser,
    add_threads_option,
    add_verbose_option,
    apply_common_options,
    default_threads,
)

#: The commands that run PyTorch (``lift`` gets ``--threads`` from its own module).
TORCH_COMMANDS = ["train", "evaluate", "flags", "demo"]


def help_text(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return capsys.readouterr().out


def option_help(text: str) -> dict[str, str]:
    """``--option -> its help text`` (wrapped lines joined) from a --help page."""
    entries, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^  (-\w, )?(--[\w-]+)", line)
        if match:
            current = match.group(2)
            entries[current] = line
        elif current and line.startswith("      "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


@pytest.mark.parametrize(
    "cores, threads", [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, 4), (16, 4), (128, 4)]
)
def test_default_threads_do_not_oversubscribe_a_small_machine(cores, threads):
    assert default_threads(cores) == threads


@pytest.mark.parametrize("command", TORCH_COMMANDS)
def test_torch_commands_take_threads_with_the_machines_default(command, capsys):
    options = option_help(help_text(command, capsys))
    assert options["--threads"].endswith(f"(default: {default_threads()})")


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_help_shows_each_default_once_and_never_none(command, capsys):
    text = help_text(command, capsys)
    assert "(default: None)" not in text and "(default: False)" not in text
    for option, line in option_help(text).items():
        if "(default:" in line:  # added only where the text did not already say it
            assert line.lower().count("default") == 1, f"{command} {option}: {line}"


def test_train_help_shows_its_defaults(capsys):
    options = option_help(help_text("train", capsys))
    assert options["--model"].endswith("(default: mlp)")
    assert options["--device"].endswith("(default: auto)")
    assert options["--seed"].endswith("(default: 0)")
    assert options["--azimuth"].endswith("(default: -180 180)")
    assert options["--up"] == "--up {x,y,z,-x,-y,-z} the library's up axis (default: z)"
    assert "(default:" not in options["--resume"]  # a flag that is off says nothing


def test_demo_help_shows_its_epochs(capsys):
    assert option_help(help_text("demo", capsys))["--epochs"].endswith(
        "training epochs (default: 15)"
    )


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_threads_refuses_nonsense_in_one_line(value, capsys):
    assert main(["demo", "--headless", "--threads", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: napari-liftpose demo: argument --threads: expected an integer")
    assert "\n" not in err


def test_threads_sets_pytorchs_threads(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        # the command fails on its missing files, after its options were applied
        code = main(["evaluate", "--threads", "2", *(str(tmp_path / n) for n in "abc")])
        assert code == 2 and "file not found" in capsys.readouterr().err
        assert torch.get_num_threads() == 2
        args = argparse.Namespace(threads=1, verbose=0)
        apply_common_options(args)
        apply_common_options(args)  # twice is fine (inter-op threads can be set only once)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "argv, level",
    [([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG)],
)
def test_verbose_counts(argv, level):
    parser = Parser(prog="x")
    add_verbose_option(parser)
    add_threads_option(parser)
    args = parser.parse_args(argv + ["--threads", "1"])
    apply_common_options(args)
    assert logging.getLogger("napari_liftpose").level == level
    apply_common_options(parser.parse_args([]))
    assert logging.getLogger("napari_liftpose").level == logging.WARNING


def test_verbose_before_and_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["-v", "demo"]).verbose == 1
    assert parser.parse_args(["demo", "-vv"]).verbose == 2
    assert parser.parse_args(["demo"]).verbose == 0


def test_train_help_says_the_defaults_training_uses(capsys):
    """The defaults in ``train --help`` for options left to TrainConfig are the ones it uses."""
    pytest.importorskip("torch")
    from napari_liftpose.lifting import TrainConfig
    from napari_liftpose.lifting.models import default_architecture

    options = option_help(help_text("train", capsys))
    mlp, temporal = TrainConfig(model="mlp"), TrainConfig(model="temporal")
    said = {
        "--epochs": f"(default: {mlp.epochs})",
        "--batch-size": f"(default: {mlp.step_size})",
        "--lr": f"(default: {mlp.learning_rate:g} for mlp, {temporal.learning_rate:g} for temporal)",
        "--patience": f"(default: {mlp.patience})",
        "--val-fraction": f"(default: {mlp.val_fraction:g})",
        "--width": f"(default: {default_architecture('mlp')['width']};",
        "--blocks": f"(default: {default_architecture('mlp')['blocks']})",
        "--channels": f"(default: {default_architecture('temporal')['channels']})",
        "--filter-widths": "(default: "
        + " ".join(map(str, default_architecture("temporal")["filter_widths"]))
        + ")",
        "--dropout": f"(default: {default_architecture('mlp')['dropout']:g})",
    }
    for option, text in said.items():
        assert text in options[option], (option, options[option])
    augment = {
        (kind, pairs): TrainConfig(model=kind).augmentation(real_pairs=pairs)
        for kind in ("mlp", "temporal")
        for pairs in (False, True)
    }
    assert {a.bone_jitter for a in augment.values()} == {0.0}
    assert augment["temporal", False].keypoint_dropout == augment["mlp", True].keypoint_dropout
    kp = augment["temporal", False].keypoint_dropout
    frames = augment["temporal", False].frame_dropout
    assert f"(default: {kp:g} for temporal" in options["--keypoint-dropout"]
    assert f"(default: {frames:g} for temporal" in options["--frame-dropout"]
    assert augment["mlp", False].keypoint_dropout == 0 and augment["mlp", True].frame_dropout == 0


@pytest.mark.parametrize(
    "module, hint",
    [
        ("torch", "download.pytorch.org/whl/cpu"),
        ("dask.distributed", "pip install 'napari-liftpose[dask]'"),
    ],
)
def test_a_missing_package_is_one_line_saying_what_to_install(monkeypatch, capsys, module, hint):
    def needs(args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setitem(
        SUBCOMMANDS, "needs", lambda sub: sub.add_parser("needs").set_defaults(run=needs)
    )
    assert main(["needs"]) == 1
    err = capsys.readouterr().err
    top = module.split(".")[0]
    assert err.startswith(f"error: napari-liftpose needs: needs {top}, which is not installed; ")
    assert hint in err and err.count("\n") == 1 and "Traceback" not in err
