"""Share strings: a script as one URL-safe string that replays to the bit, and one clear line
(exit 2) for a string that is corrupt, truncated or not a share string."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest

from sgdtui.cli import main, read_script_string
from sgdtui.engine.commands import AddLane, Nudge, RemoveLane, Reset, SwitchProblem
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.session import Session
from sgdtui.engine.share import PREFIX, ShareError, decode_table, encode_table, encode_text, load_share
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.ui.launch import build_session

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
CSV_HASHES = json.loads((ROOT / "tests" / "fixtures" / "example_csv_sha256.json").read_text())
URL_SAFE = re.compile(r"[A-Za-z0-9_.\-]+")
REGISTRY = SurfaceRegistry(include_user_dir=False)


def share_of(path: Path) -> str:
    return encode_text(path.read_text())


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_round_trips_compact_and_url_safe(script):
    share = share_of(script)
    assert share.startswith(PREFIX) and URL_SAFE.fullmatch(share)
    assert decode_table(share) == tomllib.loads(script.read_text())
    assert len(share) < len(script.read_text()) / 2  # compact: comments dropped, zlib with a preset dictionary


@pytest.mark.parametrize("name", ["batch-coupling.toml", "mlp-moons.toml"])
def test_replaying_the_string_gives_the_scripts_pinned_bytes(name, tmp_path, capsys):
    share = share_of(ROOT / "examples" / name)
    out = tmp_path / "out"
    from tests.test_replay_cli import replay_arguments

    assert main(["replay", "--script-string", share, "--out", str(out), "--quiet",
                 *replay_arguments(ROOT / "examples" / name)]) == 0
    assert capsys.readouterr().err == ""
    pinned = {key.split(":", 1)[1]: digest for key, digest in CSV_HASHES.items() if key.startswith(name + ":")}
    assert pinned
    for file, digest in pinned.items():
        assert hashlib.sha256((out / file).read_bytes()).hexdigest() == digest, file


def test_a_steered_session_shared_replays_bit_identically():
    """What the palette's share command encodes: a session's script with every kind of event."""
    session = Session({"surface": "himmelblau"}, [LaneConfig.create("gd", "sgd", lr=0.01),
                                                  LaneConfig.create("adam", "adam", lr=0.05, batch=4, noise=0.3)],
                      seed=7, registry=REGISTRY)
    session.advance(40)
    session.apply(Nudge("gd", "lr", +1))
    session.apply(Nudge("adam", "schedule"))
    session.apply(AddLane({"optimizer": "nesterov", "lr": 0.003}))
    session.advance(30)
    session.apply(SwitchProblem({"surface": "rosenbrock"}))
    session.advance(25)
    session.apply(RemoveLane("gd"))
    session.apply(Reset())
    session.advance(20)
    share = encode_text(session.to_toml())
    replayed = Session.from_script(load_share(share, registry=REGISTRY), history_capacity=None)
    replayed.run()
    original, again = session.trajectories(), replayed.trajectories()
    assert list(original) == list(again) == ["adam", "nesterov"]
    for name in original:
        for key in ("pos", "loss", "lr"):
            assert np.array_equal(original[name][key], again[name][key]), (name, key)


def test_share_command_prints_the_string(capsys):
    script = ROOT / "examples" / "langevin.toml"
    assert main(["share", str(script)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == encode_table(tomllib.loads(script.read_text()))


def test_share_command_rejects_an_invalid_script_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[[lanes]]\noptimizer = "adma"\n')
    assert main(["share", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml:3: lanes[0].optimizer: unknown optimizer 'adma'" in err


def test_playground_accepts_a_script_string():
    share = share_of(ROOT / "examples" / "pathological-gd-lrs.toml")
    ns = argparse.Namespace(surface=None, expr=None, surfaces=[], script=None, script_string=share,
                            record=None, seed=None)
    read_script_string(ns)
    session, _ = build_session(ns)
    from_file = Session.from_script(ROOT / "examples" / "pathological-gd-lrs.toml")
    assert (session.seed, session.steps, session.initial_problem, session.initial_lanes, session.pending) == (
        from_file.seed, from_file.steps, from_file.initial_problem, from_file.initial_lanes, from_file.pending)


def corruptions(share: str) -> dict[str, str]:
    body = share[len(PREFIX):]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    return {
        "truncated": share[: len(share) // 2],
        "one character changed": PREFIX + flipped,
        "not base64": share[:20] + "*" + share[21:],
        "no prefix": body,
        "empty": "",
        "not zlib": PREFIX + "aGVsbG8gd29ybGQ",
    }


@pytest.mark.parametrize("kind", list(corruptions(PREFIX + "x" * 40)))
def test_a_bad_string_is_one_line_exit_2(kind, capsys, tmp_path):
    share = share_of(ROOT / "examples" / "rosenbrock-race.toml")
    bad = corruptions(share)[kind]
    with pytest.raises(ShareError):
        decode_table(bad)
    for argv in (["replay", "--script-string", bad, "--out", str(tmp_path / "o")], ["--script-string", bad]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("sgdtui: error: <script string>: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_valid_string_of_an_invalid_script_names_the_key(capsys):
    share = encode_table({"version": 1, "lanes": [{"optimizer": "sgd", "lr": -1.0}]})
    assert main(["replay", "--script-string", share]) == 2
    err = capsys.readouterr().err
    assert "<script string>: lanes[0].lr: must be a number in (0, 1e+06], got -1.0" in err


def test_a_string_that_expands_without_bound_is_refused():
    import base64

    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY,
                              __import__("sgdtui.engine.share", fromlist=["_ZDICT"])._ZDICT)
    bomb = packer.compress(b" " * (40 * 1024 * 1024)) + packer.flush()
    share = PREFIX + base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    with pytest.raises(ShareError, match="expands to more than"):
        decode_table(share)


def test_script_and_script_string_are_exclusive(capsys):
    assert main(["replay", "x.toml", "--script-string", PREFIX + "abc"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["--script", "x.toml", "--script-string", PREFIX + "abc"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_share_warns_about_a_surface_the_string_does_not_carry(tmp_path, capsys):
    folder = tmp_path / "surfaces"
    folder.mkdir()
    (folder / "bowl.toml").write_text('name = "my-bowl"\nexpr = "x**2 + y**2"\n')
    script = tmp_path / "race.toml"
    script.write_text('version = 1\nsteps = 5\n[problem]\nsurface = "my-bowl"\n[[lanes]]\noptimizer = "sgd"\n')
    assert main(["share", str(script), "--surfaces", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(PREFIX)
    assert "warning: the script uses your surface 'my-bowl'" in captured.err and "bowl.toml" in captured.err
