"""`sgdtui replay SCRIPT --svg FILE`: the final view of a replay as an SVG screenshot, headless."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sgdtui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def svg_text(svg: str) -> str:
    """The visible text of a Textual SVG screenshot (its cells are <text> runs, spaces as &#160;)."""
    runs = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    return "".join(runs).replace("&#160;", " ")


def test_surface_replay_writes_contour_loss_and_lanes(tmp_path, capsys):
    svg_path = tmp_path / "race.svg"
    argv = ["replay", str(ROOT / "examples" / "rosenbrock-race.toml"), "--out", str(tmp_path / "out"),
            "--steps", "150", "--quiet", "--svg", str(svg_path), "--size", "120x40"]
    assert main(argv) == 0
    assert f"wrote {svg_path}" in capsys.readouterr().out
    assert (tmp_path / "out" / "trajectories.csv").is_file()  # the replay's own outputs as usual
    svg = svg_path.read_text()
    assert svg.startswith("<svg") and "rosenbrock-race.toml, step 150" in svg.replace("&#160;", " ")  # the title
    text = svg_text(svg)
    assert "rosenbrock" in text and "loss" in text  # the contour pane's and the loss pane's titles
    for lane in ("sgd", "momentum", "nesterov", "adam", "rmsprop"):
        assert lane in text
    assert "step 150" in text and "paused" in text  # the status line: the final step
    # Each lane's trajectory is drawn in its own colour: braille cells in several fills.
    colours = set(re.findall(r"\.terminal-[0-9a-z]+-r\d+ \{ fill: (#[0-9a-f]{6})", svg))
    assert len(colours) >= 5
    again = tmp_path / "again.svg"
    assert main([*argv[:-4], "--svg", str(again), "--size", "120x40"]) == 0
    assert again.read_text() == svg  # the same script gives the same picture


def test_mlp_replay_shows_the_mlp_view(tmp_path):
    svg_path = tmp_path / "mlp.svg"
    assert main(["replay", str(ROOT / "examples" / "mlp-moons.toml"), "--out", str(tmp_path / "out"),
                 "--steps", "60", "--quiet", "--svg", str(svg_path)]) == 0
    text = svg_text(svg_path.read_text())
    assert "predicted class" in text and "val acc" in text and "mlp-moons" in text


@pytest.mark.parametrize("size", ["160", "axb", "10x5", "2000x40"])
def test_a_bad_size_is_one_line_exit_2(size, tmp_path, capsys):
    svg_path = tmp_path / "x.svg"
    assert main(["replay", str(ROOT / "examples" / "langevin.toml"), "--out", str(tmp_path / "out"),
                 "--svg", str(svg_path), "--size", size]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--size" in err
    assert not svg_path.exists() and not (tmp_path / "out").exists()  # refused before any work


def test_svg_arguments_are_checked_before_the_replay(tmp_path, capsys):
    script = str(ROOT / "examples" / "langevin.toml")
    assert main(["replay", script, "--out", str(tmp_path / "out"), "--size", "80x24"]) == 2
    assert "--size goes with --svg FILE" in capsys.readouterr().err
    assert main(["replay", script, "--out", str(tmp_path / "out"), "--svg", str(tmp_path / "no" / "x.svg")]) == 2
    assert "--svg: folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
