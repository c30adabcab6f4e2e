"""`search-cli serve` options: turned into Settings, bad ones refused in one line (exit code 2)."""

from __future__ import annotations

import pytest

from search.cli.cmd_serve import settings_from_args
from search.cli.main import build_parser, main


def parse(*argv: str):
    return build_parser().parse_args(["serve", *argv])


def test_options_override_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEFIT_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("DEVICEFIT_API_TOKEN", "t0k")
    settings = settings_from_args(parse("--database-url", f"sqlite:///{tmp_path}/x.db", "--broker",
                                        "redis://127.0.0.1:6379/5", "--model-root", str(tmp_path)))
    assert settings.database_url == f"sqlite:///{tmp_path}/x.db"
    assert settings.broker_url == "redis://127.0.0.1:6379/5"
    assert settings.model_roots == (tmp_path.resolve(),)
    assert settings.api_token == "t0k"  # not an option: secrets stay out of the process list


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["serve", "--model-root", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["serve", "--port", "0"]) == 2
    assert "--port 0" in capsys.readouterr().err
    assert main(["serve", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use the database") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_trust_remote_code_flag(value):
    from service.settings import Settings

    assert Settings.from_env({"DEVICEFIT_TRUST_REMOTE_CODE": value}).trust_remote_code
    assert not Settings.from_env({}).trust_remote_code
