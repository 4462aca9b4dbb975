from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from geoseg.batch import load_batch
from geoseg.cli import app
from geoseg.config import Config, config_yaml, output_dir, parse_override, resolve_config
from geoseg.errors import ConfigError
from geoseg.segment import PRESETS, SegmentParams
from tests.helpers import shared

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_defaults_are_the_default_preset() -> None:
    config = resolve_config()
    assert config.segment.params() == PRESETS["default"]
    assert config.tiling.tile_size == 512
    assert config.segment.mode == "scene"


def test_every_field_has_a_description() -> None:
    for section in Config.model_fields.values():
        model = section.annotation
        for name, field in model.model_fields.items():  # type: ignore[union-attr]
            assert field.description, f"{model.__name__}.{name} has no description"


def test_segment_params_defaults_are_the_default_preset() -> None:
    assert SegmentParams() == PRESETS["default"]


def test_segment_keys_carry_their_bounds_and_default() -> None:
    fields = Config.model_fields["segment"].annotation.model_fields  # type: ignore[union-attr]
    lr, stop = fields["lr"], fields["stop_change"]
    assert lr.default == PRESETS["default"].lr
    assert [m.gt for m in lr.metadata if hasattr(m, "gt")] == [0]
    assert {type(m).__name__ for m in stop.metadata} >= {"Ge", "Lt"}


RUN_CONFIGS = [path for path in CONFIGS if path.name != "batch.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_bundled_configs_restate_no_preset_or_default_value(path: Path) -> None:
    data = yaml.safe_load(path.read_text()) or {}
    preset = data.get("segment", {}).get("preset", "default")
    base = resolve_config(overrides=[f"segment.preset={preset}"])
    for section, entries in data.items():
        if section == "scenes":  # a batch file's list of scenes
            continue
        for key, value in entries.items():
            if (section, key) == ("segment", "preset"):
                continue
            default = getattr(getattr(base, section), key)
            assert value != default, f"{path.name}: {section}.{key}={value!r} restates it"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_bundled_configs_validate(path: Path) -> None:
    if path.name == "batch.yaml":
        shared("sentinel2_l1c_18SVG_10m")  # its scenes: skipped without ../shared/data
    done = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert done.exit_code == 0, done.output
    assert "valid" in done.output
    if path.name == "batch.yaml":
        common, items = load_batch(path)
        assert common.runtime.executor == "local"
        assert len(items) >= 3
    else:
        assert isinstance(resolve_config(path), Config)


def test_bundled_configs_cover_the_presets() -> None:
    presets = {resolve_config(path).segment.preset for path in RUN_CONFIGS}
    assert presets >= {"default", "fork", "kanezaki2018", "tip2020"}


def test_preset_then_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("segment:\n  preset: fork\n  lr: 0.2\n  max_iterations: 10\n")
    config = resolve_config(path, overrides=["segment.max_iterations=32"])
    assert config.segment.optimizer == "sgd"  # from the fork preset
    assert config.segment.lr == 0.2  # from the file
    assert config.segment.max_iterations == 32  # --set wins
    shortcut = resolve_config(
        path, values={"segment": {"max_iterations": 5}}, overrides=["segment.lr=0.3"]
    )
    assert (shortcut.segment.max_iterations, shortcut.segment.lr) == (5, 0.3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["segment.iteratons=3"],
            "segment.iteratons: unknown key; did you mean segment.max_iterations?",
        ),
        (["segmnt.lr=1"], "segmnt: unknown section; did you mean segment?"),
        (["tiling.zzz=1"], "tiling.zzz: unknown key; known keys: tile_size, overlap"),
        (["segment.lr=-1"], "segment.lr=-1.0 must be > 0"),
        (
            ["segment.optimizer=rmsprop"],
            "segment.optimizer='rmsprop': Input should be 'sgd' or 'adam'",
        ),
        (["tiling.tile_size=abc"], "tiling.tile_size='abc': Input should be a valid integer"),
        (["tiling.tile_size=8"], "tiling.tile_size=8: Input should be greater than or equal to 16"),
        (
            ["tiling.overlap=600"],
            "tiling.overlap=600 must be >= 0 and smaller than tiling.tile_size=512",
        ),
        (["segment.preset=nope"], "segment.preset: unknown preset 'nope'; choose one of"),
        (["runtime.device=gpu"], "runtime.device='gpu'"),
        (["input.bands=[0, 2]"], "input.bands.0=0: Input should be greater than or equal to 1"),
        (
            ["normalize.low_percentile=99"],
            "normalize.low_percentile=99.0 must be below normalize.high_percentile=98.0",
        ),
        (["tiling.overlap=2"], r"tiling.overlap=2 must be at least the network's receptive field"),
        (["segment"], "--set 'segment': expected section.key=value"),
        (["segment.mode.x=1"], "segment.mode={'x': 1}: Input should be 'scene' or 'tile'"),
        (["segment.mode=tile", "segment.mode.x=1"], "segment.mode.x: mode is a value"),
    ],
)
def test_bad_values_name_the_key_value_and_what_is_allowed(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=overrides)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("segment:\n  lr: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+"):
        resolve_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("tiling:\n  tilesize: 256\n")
    with pytest.raises(
        ConfigError,
        match=r"tiling.tilesize: unknown key; did you mean "
        r"tiling.tile_size\? \(.*typo.yaml\)",
    ):
        resolve_config(typo)
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        resolve_config(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        resolve_config(listed)


def test_override_values_are_yaml() -> None:
    assert parse_override("input.nodata=null") == (["input", "nodata"], None)
    assert parse_override("segment.refine_output=false") == (["segment", "refine_output"], False)
    assert parse_override("output.dir=out/{stem}") == (["output", "dir"], "out/{stem}")


def test_shown_yaml_round_trips() -> None:
    config = resolve_config(overrides=["segment.preset=fork", "input.bands=[3, 2, 1]"])
    again = Config.model_validate(yaml.safe_load(config_yaml(config)))
    assert again == config


def test_output_dir_template(tmp_path: Path) -> None:
    assert output_dir(tmp_path / "a.tif", Config()) == tmp_path / "a_geoseg"
    config = resolve_config(overrides=["output.dir=results/{stem}/run"])
    assert output_dir("x/b.tif", config) == Path("results/b/run")
    with pytest.raises(ConfigError, match=r"output.dir='out/\{name\}': only \{stem\}"):
        output_dir("b.tif", resolve_config(overrides=["output.dir=out/{name}"]))


def test_cli_config_show_and_validate(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["config", "show", "--set", "segment.max_iterations=7"])
    assert shown.exit_code == 0, shown.output
    assert yaml.safe_load(shown.output)["segment"]["max_iterations"] == 7
    ok = runner.invoke(app, ["config", "validate", str(RUN_CONFIGS[0])])
    assert ok.exit_code == 0
    assert "valid" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("segment:\n  iteratons: 3\n")
    failed = runner.invoke(app, ["config", "validate", str(bad)])
    assert failed.exit_code == 1
    assert "segment.iteratons: unknown key; did you mean segment.max_iterations?" in failed.output


def _bomb(levels: int, fan: int = 9) -> str:
    """Nested anchors, each list ``fan`` aliases of the one before: fan**levels leaves."""
    parts = [f"&a0 [{', '.join(['lol'] * fan)}]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return f"[{', '.join(parts)}]"


def test_yaml_bombs_are_refused_before_they_expand(tmp_path: Path) -> None:
    """A few hundred bytes of nested aliases would be 387 million strings: refused while
    the node graph is composed, in a file and in a --set value alike."""
    path = tmp_path / "bomb.yaml"
    path.write_text(f"segment: {{max_iterations: {_bomb(9)}}}\n")
    assert path.stat().st_size < 500
    with pytest.raises(ConfigError, match=r"bomb.yaml: line 1: its aliases .* repeat over 1,000"):
        resolve_config(path)
    with pytest.raises(ConfigError, match=r"^--set segment.lr='\[&a0 .*\(\d+ characters\): its"):
        resolve_config(overrides=[f"segment.lr={_bomb(9)}"])
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text("segment:\n  preset: &a [x, *a]\n")
    with pytest.raises(ConfigError, match=r"line 2: an alias .* collection that contains it"):
        resolve_config(recursive)
    deep = tmp_path / "deep.yaml"
    deep.write_text("segment: {preset: " + "[" * 400 + "]" * 400 + "}\n")
    with pytest.raises(ConfigError, match=r"deep.yaml: line 1: nested deeper than 32 levels"):
        resolve_config(deep)
    # aliases used as YAML means them stay allowed
    shared_bands = tmp_path / "anchors.yaml"
    shared_bands.write_text("input: {bands: &b [3, 2, 1]}\noutput: {display_bands: *b}\n")
    assert resolve_config(shared_bands).output.display_bands == [3, 2, 1]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("segment: {max_iterations: 2001-13-45}", "'2001-13-45' is not a valid timestamp"),
        ("segment: {max_iterations: !!bool x}", "'x' is not a valid bool"),
        ("segment: {max_iterations: !!int }", "'' is not a valid int"),
        (f"segment: {{max_iterations: {'9' * 5000}}}", "(5000 characters) is not a valid int"),
    ],
)
def test_yaml_values_that_do_not_convert_are_one_line(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        resolve_config(path)
    assert str(info.value).startswith(f"{path}: line 1: ")
    assert says in str(info.value)
    assert len(str(info.value)) < 300


def test_large_or_special_files_are_read_no_further_than_the_limit(tmp_path: Path) -> None:
    from geoseg.config import YAML_MAX_BYTES

    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (YAML_MAX_BYTES + 1))
    with pytest.raises(ConfigError, match=r"big.yaml: over 1 MiB"):
        resolve_config(big)
    with pytest.raises(ConfigError, match=r"/dev/zero: over 1 MiB"):
        resolve_config("/dev/zero")


def test_echoed_values_are_cut() -> None:
    """A 100 KB value is echoed as its first 60 characters and its length."""
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=[f"segment.max_iterations={'x' * 100_000}"])
    message = str(info.value)
    assert message.startswith(f"segment.max_iterations='{'x' * 60}'... (100000 characters): ")
    assert len(message) < 200
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides=[f"{'k' * 100_000}.x=1"])
    assert len(str(info.value)) < 300
    many = [f"runtime.k{i}=1" for i in range(1000)]  # the first few named, the rest counted
    named = r"runtime.k0: unknown key; known keys: seed, .*; runtime.k1: unknown key; "
    with pytest.raises(ConfigError, match=named + r"runtime.k2: unknown key; and 997 more"):
        resolve_config(overrides=many)
    with pytest.raises(ConfigError, match=r"^--set 'x{60}'... \(100000 characters\): expected"):
        resolve_config(overrides=["x" * 100_000])
    with pytest.raises(ConfigError, match=r"^segment.'a\\nb': unknown key"):
        resolve_config(overrides=["segment.a\nb=1"])  # a newline never reaches the message


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("w{stem:>2000000000}", "not '{stem:>2000000000}'"),
        ("{stem!r}", "not '{stem!r}'"),
        ("{stem[0]}", "not '{stem[0]}'"),
        ("{stem.upper}", "not '{stem.upper}'"),
        ("{0}", "not '{0}'"),
        ("{}", "not '{}'"),
        ("out/{", "Single '{' encountered"),
        ("out}", "Single '}' encountered"),
        ("a\0b", "contains a NUL character"),
    ],
)
def test_output_dir_takes_plain_stem_only(template: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(values={"output": {"dir": template}})
    assert str(info.value).startswith("output.dir=")
    assert says in str(info.value)
    config = resolve_config(overrides=["output.dir=out/{{x}}/{stem}_{stem}"])
    assert output_dir("d/a.tif", config) == Path("out/{x}/a_a")


def test_seed_is_bounded_in_the_schema() -> None:
    from geoseg.segment.params import SEED_MAX

    assert resolve_config(overrides=[f"runtime.seed={SEED_MAX}"]).runtime.seed == 2**32 - 1
    with pytest.raises(ConfigError, match=r"runtime.seed=1180591620717411303424: .* 4294967295"):
        resolve_config(values={"runtime": {"seed": 1180591620717411303424}})
    with pytest.raises(ConfigError, match=r"runtime.seed=-1: .* greater than or equal to 0"):
        resolve_config(overrides=["runtime.seed=-1"])


def test_output_dir_needs_a_scene_name() -> None:
    with pytest.raises(ConfigError, match=r"^\.: names no file"):
        output_dir(".", Config())


@pytest.mark.parametrize(
    "text", ["segment.lr=.inf", "segment.lr=" + "9" * 5000, "vectorize.simplify=.nan"]
)
def test_no_setting_takes_inf_or_nan(text: str) -> None:
    """A number too large for a float is read as inf; no setting means anything by it
    (an lr of inf trained to nan and one class). A nodata value may be -inf."""
    with pytest.raises(ConfigError, match="finite number"):
        resolve_config(overrides=[text])
    assert resolve_config(overrides=["input.nodata=-.inf"]).input.nodata == float("-inf")
