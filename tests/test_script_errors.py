"""Malformed scripts: `sgdtui replay` exits 2 with one line on stderr naming the file, the line
where possible, and the key; never a traceback."""

from __future__ import annotations

import re

import pytest

from sgdtui.cli import main

HEAD = 'version = 1\nsteps = 5\n[problem]\nsurface = "pathological"\n'
LANE = '[[lanes]]\nname = "a"\noptimizer = "sgd"\n'
OK = HEAD + LANE


def lane(extra: str) -> str:
    return HEAD + LANE + extra + "\n"


# (id, script text, substrings the message must contain, line number or None)
CASES = [
    ("toml-syntax", "version = 1\nsteps = = 5\n", ["invalid TOML"], 2),
    ("missing-version", 'steps = 5\n' + LANE, ["version", "missing"], None),
    ("version-2", OK.replace("version = 1", "version = 2"), ["version", "unsupported version 2"], 1),
    ("version-string", OK.replace("version = 1", 'version = "1"'), ["version", "unsupported"], 1),
    ("top-key-typo", OK + "", ["stpes", "did you mean 'steps'"], 1),
    ("steps-negative", OK.replace("steps = 5", "steps = -3"), ["steps", "-3"], 2),
    ("steps-float", OK.replace("steps = 5", "steps = 2.5"), ["steps", "2.5"], 2),
    ("steps-string", OK.replace("steps = 5", 'steps = "ten"'), ["steps", "'ten'"], 2),
    ("seed-negative", "seed = -1\n" + OK, ["seed", "non-negative"], 1),
    ("unknown-surface", OK.replace('"pathological"', '"rosenbrok"'), ["problem.surface", "did you mean 'rosenbrock'"], 4),
    ("surface-and-expr", HEAD + 'expr = "x**2"\n' + LANE, ["problem", "either 'surface' or 'expr'"], 5),
    ("bad-expr", 'version = 1\nsteps = 5\n[problem]\nexpr = "x**2 + foo(y)"\n' + LANE, ["problem.expr", "foo"], 4),
    ("xlim-reversed", 'version = 1\nsteps = 5\n[problem]\nexpr = "x**2"\nxlim = [3, -3]\n' + LANE,
     ["problem.xlim", "low < high"], 5),
    ("problem-key-typo", HEAD + "surfce = 1\n" + LANE, ["problem.surfce", "did you mean 'surface'"], 5),
    ("no-lanes", HEAD, ["lanes", "missing"], None),
    ("lanes-not-table-array", 'lanes = "adam"\n' + HEAD, ["lanes", "[[lanes]]"], 1),
    ("lanes-empty", 'lanes = []\n' + HEAD, ["lanes", "one or more"], 1),
    ("optimizer-typo", HEAD + '[[lanes]]\noptimizer = "adma"\n', ["lanes[0].optimizer", "did you mean 'adam'"], 6),
    ("missing-optimizer", HEAD + '[[lanes]]\nlr = 0.1\n', ["lanes[0]", "missing key 'optimizer'"], 5),
    ("unknown-lane-key", lane("momentun = 0.9"), ["lanes[0].momentun", "did you mean 'momentum'"], 8),
    ("lr-negative", lane("lr = -1"), ["lanes[0].lr", "must be a number in (0, 1e+06], got -1"], 8),
    ("momentum-1.5", lane("momentum = 1.5"), ["lanes[0].momentum", "1.5", "must be a number in [0, 1)"], 8),
    ("lr-string", lane('lr = "fast"'), ["lanes[0].lr", "must be a number", "'fast'"], 8),
    ("betas-length", HEAD + '[[lanes]]\noptimizer = "adam"\nbetas = [0.9]\n', ["lanes[0].betas", "pair"], 7),
    ("batch-zero", lane("batch = 0"), ["lanes[0].batch", "got 0"], 8),
    ("batch-float", lane("batch = 2.5"), ["lanes[0].batch", "2.5"], 8),
    ("unknown-coupling", lane('coupling = "lineer"'), ["lanes[0].coupling", "did you mean 'linear'"], 8),
    ("unknown-schedule", lane('schedule = "cosin"'), ["lanes[0].schedule", "did you mean 'cosine'"], 8),
    ("schedule-bad-param", lane('schedule = { name = "step", step_sise = 5 }'), ["lanes[0].schedule", "step_sise"], 8),
    ("schedule-param-range", lane('schedule = { name = "step", step_size = 5, gamma = -1.0 }'),
     ["lanes[0].schedule", "gamma"], 8),
    ("start-three-numbers", lane("start = [1.0, 2.0, 3.0]"), ["lanes[0].start", "[x, y]"], 8),
    ("start-and-starts", lane("start = [1.0, 2.0]\nstarts = [[0.0, 0.0]]"), ["lanes[0].starts", "not both"], 9),
    ("duplicate-lane-names", OK + LANE, ["lanes[1].name", "duplicate lane name 'a'"], 9),
    ("lane-bad-name", HEAD + '[[lanes]]\nname = "a b"\noptimizer = "sgd"\n', ["lanes[0].name", "'a b'"], 6),
    ("noise-negative", lane("noise = -0.5"), ["lanes[0].noise", "-0.5"], 8),
    ("event-without-step", OK + '[[events]]\nlane = "a"\nset = { lr = 0.5 }\n', ["events[0]", "missing key 'step'"], 8),
    ("event-two-actions", OK + '[[events]]\nstep = 1\nlane = "a"\nset = { lr = 0.5 }\nreset = true\n',
     ["events[0]", "exactly one action"], 8),
    ("event-unknown-lane", OK + '[[events]]\nstep = 1\nlane = "b"\nset = { lr = 0.5 }\n',
     ["events[0].lane", "unknown lane 'b'"], 10),
    ("event-set-unknown-key", OK + '[[events]]\nstep = 1\nlane = "a"\nset = { lrr = 0.5 }\n',
     ["events[0].set", "lrr", "did you mean 'lr'"], 11),
    ("event-set-out-of-range", OK + '[[events]]\nstep = 1\nlane = "a"\nset = { lr = -2.0 }\n',
     ["events[0].set.lr", "must be a number in (0, 1e+06]"], 11),
    ("events-out-of-order", OK + '[[events]]\nstep = 3\nreset = true\n[[events]]\nstep = 1\nreset = true\n',
     ["events[1].step", "before the previous"], 12),
    ("remove-unknown-lane", OK + '[[events]]\nstep = 1\nremove = "zz"\n', ["events[0].remove", "unknown lane 'zz'"], 10),
    ("event-unknown-key", OK + '[[events]]\nstep = 1\nrest = true\n', ["events[0].rest", "did you mean 'reset'"], 10),
    ("event-step-negative", OK + '[[events]]\nstep = -1\nreset = true\n', ["events[0].step", "-1"], 9),
    ("event-unknown-surface", OK + '[[events]]\nstep = 1\nsurface = "himmelbau"\n',
     ["events[0].surface", "did you mean 'himmelblau'"], 10),
    ("event-bad-expr", OK + '[[events]]\nstep = 1\nexpr = "x +* y"\n', ["events[0].expr"], 10),
    ("mlp-problem", 'version = 1\nsteps = 5\n[problem]\nmlp = true\n' + LANE, ["problem.mlp"], 4),
    # one validation path: an event's problem switch is held to the [problem] table's rules
    ("event-xlim-infinite", OK + '[[events]]\nstep = 1\nexpr = "x**2"\nxlim = [-inf, inf]\n',
     ["events[0].xlim", "finite"], 11),
    ("problem-xlim-huge", 'version = 1\nsteps = 5\n[problem]\nexpr = "x**2"\nxlim = [-1e300, 1e300]\n' + LANE,
     ["problem.xlim", "finite and within"], 5),
    ("event-switches-kind", OK + '[[events]]\nstep = 1\nmlp = { dataset = "moons" }\n',
     ["events[0]", "cannot switch from a surface problem to a mlp problem"], 10),
    ("schedule-as-list", lane('schedule = ["step"]'), ["lanes[0].schedule", "must be a name or a table"], 8),
    ("schedule-name-as-table", lane('schedule = { name = { a = 1 } }'), ["lanes[0].schedule", "needs a 'name'"], 8),
    ("optimizer-as-list", HEAD + '[[lanes]]\noptimizer = ["sgd"]\n', ["lanes[0].optimizer", "unknown optimizer"], 6),
    ("mlp-dataset-as-list", 'version = 1\nsteps = 5\n[problem]\nmlp = { dataset = ["moons"] }\n'
     '[[lanes]]\noptimizer = "sgd"\n', ["problem.mlp.dataset", "unknown dataset"], 4),
    ("deeply-nested", OK + "x = " + "[" * 2000 + "]" * 2000 + "\n", ["lanes[0].x", "nested too deeply"], 8),
    ("deeply-nested-inline-tables", HEAD + 'y = "[[{"  # [[[\n' + LANE + "schedule = " + "{ a = " * 2000 + "1"
     + " }" * 2000 + "\n", ["lanes[0].schedule", "nested too deeply"], 9),
    ("deeply-nested-across-lines", OK.replace("steps = 5", "steps = [\n" + "[\n" * 1500 + "]" * 1501),
     ["steps", "nested too deeply"], 2),
]
CASES[4] = ("top-key-typo", OK.replace("steps = 5", "stpes = 5"), ["stpes", "did you mean 'steps'"], 2)


def check_one_line_error(err: str, path, keys, line) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    msg = lines[0]
    assert "Traceback" not in err
    assert msg.startswith("sgdtui: error: ")
    assert str(path) in msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg
    for key in keys:
        assert key in msg, (key, msg)


@pytest.mark.parametrize("case_id,text,keys,line", CASES, ids=[c[0] for c in CASES])
def test_malformed_script_exits_2_with_one_line(case_id, text, keys, line, tmp_path, capsys):
    path = tmp_path / f"{case_id}.toml"
    path.write_text(text)
    rc = main(["replay", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    check_one_line_error(captured.err, path, keys, line)
    assert captured.out == ""


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


def test_missing_file_directory_and_non_utf8(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main(["replay", str(missing)]) == 2
    check_one_line_error(capsys.readouterr().err, missing, ["cannot read"], None)
    assert main(["replay", str(tmp_path)]) == 2
    check_one_line_error(capsys.readouterr().err, tmp_path, ["cannot read"], None)
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b"version = 1\n# caf\xe9\n\xff\xfe\n")
    assert main(["replay", str(binary)]) == 2
    check_one_line_error(capsys.readouterr().err, binary, ["UTF-8"], None)


def test_bad_arguments_exit_2(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text(OK)
    assert main(["replay", str(path), "--steps", "-4"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["replay", str(path), "--steps", "many"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "many" in err
    assert main(["list", "planets"]) == 2
    assert re.search(r"invalid choice: 'planets'", capsys.readouterr().err)
    no_steps = tmp_path / "nosteps.toml"
    no_steps.write_text(OK.replace("steps = 5\n", ""))
    assert main(["replay", str(no_steps)]) == 2
    assert "--steps" in capsys.readouterr().err
