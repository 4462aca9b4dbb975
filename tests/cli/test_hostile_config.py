"""Hostile configuration text through the command line: random YAML documents (config
files and batch files), random ``--set`` lines and seeds, and the known bombs. Every
example must end with exit status 0, or with exactly one short ``geoseg: error:`` line
and status 1 or 2, within 5 s and 500 MB.

The examples run in one child process (:mod:`tests.cli_sandbox`) that calls the
console script's :func:`geoseg.cli.main` in-process under an address-space limit, with
the scene runs replaced by stand-ins: it reads and checks, it never trains, and it
writes only inside its own folder. 80 examples in the default tier, 2,000 with
``-m slow``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from geoseg.sections import Config
from tests.helpers import ROOT

SECONDS = 5.0
MEGABYTES = 500.0
LINE_CHARS = 1000  # an error line: a few keys, paths and values cut to QUOTE_CHARS
ANSWER_S = 60.0  # no answer in this long: the child hangs


class Sandbox:
    """The child process of :mod:`tests.cli_sandbox`, restarted after a crash or hang."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.starts = 0
        self.process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        self.starts += 1
        folder = self.root / f"child{self.starts}"
        folder.mkdir()
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_sandbox", str(folder)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(folder / "startup.log").open("w"),
            text=True,
            env={**os.environ, "COLUMNS": "200", "PYTHONHASHSEED": "0"},
        )
        ready = self._answer(process, timeout=180.0)
        assert ready is not None, (folder / "startup.log").read_text()
        assert ready["ready"]
        return process

    @staticmethod
    def _answer(process: subprocess.Popen[str], timeout: float) -> dict[str, Any] | None:
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if readable else ""
        return json.loads(line) if line else None

    def run(self, args: list[str], files: dict[str, str] | None = None,
            binary: dict[str, bytes] | None = None) -> dict[str, Any]:  # fmt: skip
        """``geoseg ARGS`` in a fresh folder holding ``files``; the child's answer."""
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        assert self.process.stdin is not None
        request = {
            "args": args,
            "files": files or {},
            "binary": {name: data.hex() for name, data in (binary or {}).items()},
        }
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = self._answer(self.process, ANSWER_S)
        except BrokenPipeError:
            answer = None
        if answer is None:  # died (the memory limit) or hung: the next example restarts it
            self.close()
            return {"status": "crashed or hung", "stderr": "", "seconds": 0.0, "peak_mb": 0.0}
        return answer

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("hostile"))
    yield box
    box.close()


def check(result: dict[str, Any], what: object) -> None:
    """Exit 0 with nothing on stderr, or one short ``geoseg: error:`` line; in time and
    memory."""
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    shown = f"{what!r:.2000}\n{result['stderr'][-4000:]}"
    if result["status"] == 0:
        assert not lines, shown
    else:
        assert result["status"] in (1, 2), shown
        assert len(lines) == 1, shown
        assert lines[0].startswith("geoseg: error: "), shown
        assert len(lines[0]) <= LINE_CHARS, shown
    assert result["seconds"] < SECONDS, shown
    assert result["peak_mb"] < MEGABYTES, shown


# ---------------------------------------------------------------------------- examples

SECTIONS = {name: list(f.annotation.model_fields) for name, f in Config.model_fields.items()}
KEYS = [f"{section}.{key}" for section, keys in SECTIONS.items() for key in keys]


def bomb(levels: int = 9, fan: int = 9) -> str:
    """Nested anchors: ``levels`` lists, each ``fan`` aliases of the one before (the
    410-byte "billion laughs" at 9 and 9)."""
    parts = [f"&a0 [{', '.join(['lol'] * fan)}]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return f"[{', '.join(parts)}]"


BOMB = bomb()
DEEP = "[" * 400 + "]" * 400
SELF = "&s [a, *s]"

TEXTS = [
    "out/{stem}", "{stem:>2000000000}", "w{stem:>9}", "{stem!r}", "{0}", "{}", "{stem.x}",
    "{stem[0]}", "{", "}", "{{x}}/{stem}", "a\x00b", "/abs/{stem}", "../{stem}", "EPSG:4326",
    "EPSG:999999", "auto", "cuda:7", "tpu", "scene", "tile", "fork", "nope", "adam", "x.gpkg",
    "x.xyz", "2001-13-45", "1e400", ".nan", "-.inf", "0x1F", "0o17", "~", "", " ", "é",
    "\u202e", "\t", "\udcff", "a\nb", "\x1e",
]  # fmt: skip
TOKENS = [
    "[", "]", "{", "}", ", ", ": ", "- ", "\n", "  ", "&a ", "*a", "&b ", "*b", "!!int ",
    "!!bool ", "!!float ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "!!str ",
    "!!python/object:os.system ", "!<tag:x> ", "<<: ", "? ", "|\n", ">-\n", "'", '"', "# ",
    "%YAML 1.1\n", "---\n", "...\n", "\\", "\t", "\x00", "\x85", "\ufeff", "\udcff", "1", "-1",
    "2**64",
    "1180591620717411303424", "9" * 5000, "1e400", ".nan", "2001-13-45", "x", "lol",
    "{stem}", "{stem:>99999999}", *SECTIONS, *{key for keys in SECTIONS.values() for key in keys},
    "scenes", "path", "set",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(
        [
            0,
            1,
            2,
            3,
            16,
            32,
            64,
            128,
            512,
            4096,
            0.5,
            2.0,
            98.0,
            -1,
            2**32,
            2**63,
            1e308,
            True,
            False,
            None,
            [],
            {},
            [4, 3, 2],
            [1, 1],
        ]
    ),
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(TEXTS),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip
sections = st.dictionaries(
    st.one_of(st.sampled_from([k for ks in SECTIONS.values() for k in ks]), st.text(max_size=8)),
    values,
    max_size=5,
)  # fmt: skip
configs = st.dictionaries(
    st.one_of(st.sampled_from(list(SECTIONS)), st.text(max_size=8)),
    st.one_of(sections, values),
    max_size=4,
)
raw_yaml = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
set_lines = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.sampled_from(TEXTS)),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), raw_yaml),
    st.builds(
        lambda k, v: f"{k}={yaml.safe_dump(v, default_flow_style=True, width=10**9).strip()}",
        st.sampled_from(KEYS),
        values,
    ),
    st.text(max_size=30),
    raw_yaml,
)
scene_names = st.one_of(
    st.sampled_from(["a.tif", "b.tif", "*.tif", "?.tif", "[ab].tif", "missing.tif", "*",
                     "https://example.invalid/x.tif", "s3://b/k.tif", "a\x00.tif", ""]),
    st.text(alphabet="ab*?[]!._-tif{}", max_size=10),
)  # fmt: skip
scene_entries = st.one_of(
    scene_names,
    st.fixed_dictionaries({"path": scene_names}, optional={"set": st.lists(set_lines, max_size=3)}),
    values,
)  # fmt: skip
batches = st.builds(
    lambda scenes, config: {"scenes": scenes, **config},
    st.integers(0, 9).flatmap(
        lambda i: values if i == 0 else st.lists(scene_entries, min_size=1, max_size=4)
    ),
    configs,
)


def _dump(document: Any) -> str:
    try:
        return yaml.safe_dump(document, allow_unicode=True, width=10**9)
    except yaml.YAMLError:
        return repr(document)


def _special(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``text`` nine times in ten; else a bomb or deep nesting in one of the places."""
    bombs = st.builds(
        lambda n, k, where: where.replace("B", bomb(n, k)),
        st.integers(1, 10),
        st.integers(1, 10),
        st.sampled_from(["segment: {max_iterations: B}\n", "scenes: [B]\n",
                         "scenes: [{path: a.tif, set: B}]\n", "runtime: {gdal_options: B}\n"]),
    )  # fmt: skip
    deep = st.builds(
        lambda n, o, c: f"segment: {{preset: {o * n}x{c * n}}}\n",
        st.integers(1, 300),
        st.sampled_from(["[", "{a: ", "- "]),
        st.sampled_from(["]", "}", ""]),
    )
    return st.integers(0, 9).flatmap(lambda i: st.one_of(bombs, deep) if i == 0 else text)


config_documents = _special(
    st.one_of(
        configs.map(_dump),
        raw_yaml,
        st.builds(lambda doc, junk: _dump(doc) + junk, configs, raw_yaml),
    )
)
batch_documents = _special(
    st.one_of(
        batches.map(_dump),
        batches.map(_dump),
        st.builds(lambda doc, junk: _dump(doc) + junk, batches, raw_yaml),
    )
)
set_lists = st.lists(set_lines, max_size=3)
seeds = st.one_of(st.none(), st.integers(), st.integers(min_value=-(2**100), max_value=2**100))
CASES = st.one_of(
    st.tuples(st.just("batch"), batch_documents, set_lists, st.none()),
    st.tuples(st.just("validate"), st.one_of(batch_documents, config_documents), st.just([]),
              st.none()),
    st.tuples(st.sampled_from(["show", "run"]), config_documents, set_lists, seeds),
)  # fmt: skip
"""(command, doc.yaml, --set lines, --seed): ``config validate`` reads either kind of
file, ``batch`` a batch file, ``config show`` and ``run`` a config file."""


def args_for(command: str, sets: list[str], seed: int | None) -> list[str]:
    given = [f"--set={line}" for line in sets if "\x00" not in line]  # argv holds no NUL
    if command == "validate":
        return ["config", "validate", "doc.yaml"]
    if command == "show":
        return ["config", "show", "-c", "doc.yaml", *given]
    if command == "batch":
        return ["batch", "doc.yaml", "-q", *given]
    more = [] if seed is None else [f"--seed={seed}"]
    return ["run", "a.tif", "-c", "doc.yaml", "-q", *more, *given]


def hostile(sandbox: Sandbox, command: str, document: str, sets: list[str], seed: int | None,
            binary: bytes | None = None) -> None:  # fmt: skip
    """One example: ``doc.yaml`` (and the empty scenes a.tif, b.tif) in a fresh folder."""
    files = {"a.tif": "", "b.tif": ""}
    if binary is None:
        files["doc.yaml"] = document
    result = sandbox.run(
        args_for(command, sets, seed), files, {"doc.yaml": binary} if binary is not None else None
    )
    check(result, (command, document, sets, seed))


KNOWN = [
    ("validate", f"segment: {{max_iterations: {BOMB}}}\n", [], None),  # --config
    ("validate", f"scenes: [{BOMB}]\n", [], None),  # a batch scene entry
    ("validate", f"scenes: [{{path: a.tif, set: {BOMB}}}]\n", [], None),  # set:
    ("batch", f"scenes: [{{path: a.tif, set: {BOMB}}}]\n", [], None),
    ("run", "{}\n", [f"segment.max_iterations={BOMB}"], None),
    ("show", "{}\n", [f"segment.max_iterations={'x' * 100_000}"], None),
    ("show", "{}\n", ["output.dir=w{stem:>2000000000}"], None),
    ("run", "{}\n", ["output.dir=w{stem:>2000000000}"], None),
    ("validate", "scenes: [a.tif]\noutput: {dir: 5}\n", [], None),
    ("validate", "output: {dir: 5}\n", [], None),
    ("run", "{}\n", [], 1180591620717411303424),
    ("run", "{}\n", [], -1),
    ("validate", f"segment: {{preset: {DEEP}}}\n", [], None),
    ("show", "{}\n", [f"segment.preset={DEEP}"], None),
    ("validate", f"segment: {{preset: {SELF}}}\n", [], None),
    ("validate", "segment: {max_iterations: 2001-13-45}\n", [], None),
    ("validate", "segment: {max_iterations: !!bool x}\n", [], None),
    ("validate", f"segment: {{max_iterations: {'9' * 5000}}}\n", [], None),
    ("validate", 'scenes: ["a\\0.tif"]\n', [], None),  # a NUL
    ("validate", "scenes: [{path: a.tif, 1: 2}]\n", [], None),
    ("validate", "input: {bands: [" + ", ".join(["x"] * 50_000) + "]}\n", [], None),
    ("batch", "scenes: ['*.tif']\noutput: {dir: out}\n", [], None),
    ("batch", "scenes: [a.tif, {path: b.tif, set: ['output.dir=../x/../x/a']}]\n"
              "output: {dir: '{stem}/../../x/a'}\n", [], None),
]  # fmt: skip


def _with_known(test: Any) -> Any:
    for case in KNOWN:
        test = example(case)(test)
    return test


FUZZ = {
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                              HealthCheck.data_too_large],
    "deadline": None,
}  # fmt: skip


@_with_known
@settings(max_examples=80, **FUZZ)
@given(CASES)
def test_hostile_text_ends_in_one_line(sandbox: Sandbox, case: tuple[Any, ...]) -> None:
    hostile(sandbox, *case)


@pytest.mark.slow
@_with_known
@settings(max_examples=2000, **FUZZ)
@given(CASES)
def test_hostile_text_ends_in_one_line_thoroughly(sandbox: Sandbox, case: tuple[Any, ...]) -> None:
    hostile(sandbox, *case)


@settings(max_examples=20, **FUZZ)
@given(st.sampled_from(["validate", "show", "batch"]), st.binary(max_size=200))
def test_hostile_bytes_end_in_one_line(sandbox: Sandbox, command: str, data: bytes) -> None:
    hostile(sandbox, command, "", [], None, binary=data)


def test_the_sandbox_answers_as_the_command_does(sandbox: Sandbox) -> None:
    """The harness itself: exit status, the error line, a valid file, the stand-ins."""
    missing = sandbox.run(["config", "validate", "none.yaml"])
    check(missing, "missing file")
    assert missing["status"] == 1
    assert "none.yaml: config file not found" in missing["stderr"]
    assert missing["peak_mb"] < 50
    valid = sandbox.run(["config", "validate", "c.yaml"], {"c.yaml": "tiling: {tile_size: 256}"})
    assert (valid["status"], valid["stderr"], valid["stdout_chars"] > 0) == (0, "", True)
    run = sandbox.run(["run", "a.tif", "-q"], {"a.tif": ""})
    assert run["status"] == 1
    assert run["stderr"].strip() == "geoseg: error: sandbox: the scene is not run"
