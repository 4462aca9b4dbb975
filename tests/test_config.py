from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from geoseg.batch import load_batch
from geoseg.cli import app
from geoseg.config import Config, config_yaml, output_dir, parse_override, resolve_config
from geoseg.errors import ConfigError
from geoseg.segment import PRESETS
from tests.conftest import shared

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


RUN_CONFIGS = [path for path in CONFIGS if path.name != "batch.yaml"]


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
