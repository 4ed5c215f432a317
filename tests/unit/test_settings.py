from __future__ import annotations

import stat
from pathlib import Path

import pytest

from exposure.errors import ConfigurationError
from exposure.settings import DEFAULT_DATABASE_URL, load_settings

PEPPER = "ab" * 32


def test_defaults_with_only_a_pepper(tmp_path: Path) -> None:
    settings = load_settings({"EXPOSURE_PEPPER": PEPPER}, env_file=tmp_path / ".env")
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert settings.pepper.reveal() == bytes.fromhex(PEPPER)
    assert str(settings.timezone) == "Asia/Tokyo"
    assert settings.login_id_case_sensitive is False
    assert settings.webhook_url is None
    assert not settings.broker_domains.matches("trade.sec.example")
    assert settings.tweak_guesses == 20
    assert settings.api_listen == ("127.0.0.1", 8080)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("5", 5), ("1000", 1000)])
def test_tweak_guesses_from_off_to_the_maximum(tmp_path: Path, value: str, expected: int) -> None:
    environ = {"EXPOSURE_PEPPER": PEPPER, "EXPOSURE_TWEAK_GUESSES": value}
    assert load_settings(environ, env_file=tmp_path / ".env").tweak_guesses == expected


def test_first_run_generates_pepper_file_0600_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    first = load_settings({}, env_file=env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "WARNING" in capsys.readouterr().err
    assert len(first.pepper.reveal()) == 32
    # The second run reads the same pepper back and does not warn again.
    second = load_settings({}, env_file=env_file)
    assert second.pepper == first.pepper
    assert "WARNING" not in capsys.readouterr().err


def test_existing_env_file_is_appended_and_tightened(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("EXPOSURE_TIMEZONE=UTC")
    env_file.chmod(0o644)
    settings = load_settings({}, env_file=env_file)
    assert str(settings.timezone) == "UTC"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text().startswith("EXPOSURE_TIMEZONE=UTC\n")


def test_environment_overrides_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"EXPOSURE_PEPPER={PEPPER}\nEXPOSURE_TIMEZONE=UTC\n")
    settings = load_settings({"EXPOSURE_TIMEZONE": "Europe/London"}, env_file=env_file)
    assert str(settings.timezone) == "Europe/London"


def test_secrets_are_redacted_in_repr(tmp_path: Path) -> None:
    secret_b64 = "c2VjcmV0LWtleS1mb3ItdGVzdHM="
    settings = load_settings(
        {"EXPOSURE_PEPPER": PEPPER, "EXPOSURE_WEBHOOK_SECRET": f"whsec_{secret_b64}"},
        env_file=tmp_path / ".env",
    )
    text = repr(settings)
    assert PEPPER not in text
    assert bytes.fromhex(PEPPER).hex() not in text
    assert secret_b64 not in text and "secret-key-for-tests" not in text
    assert "**********" in text
    assert settings.webhook_secrets[0].reveal() == b"secret-key-for-tests"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("EXPOSURE_PEPPER", "not-hex", "hex"),
        ("EXPOSURE_PEPPER", "abcd", "at least 16 bytes"),
        ("EXPOSURE_LOGIN_ID_CASE_SENSITIVE", "perhaps", "true or false"),
        ("EXPOSURE_WEBHOOK_URL", "ftp://reset.example", "http"),
        ("EXPOSURE_WEBHOOK_SECRET", "plain-secret", "whsec_"),
        ("EXPOSURE_WEBHOOK_SECRET", "whsec_!!!", "base64"),
        ("EXPOSURE_TIMEZONE", "Mars/Olympus", "time zone"),
        ("EXPOSURE_PHONE_REGION", "JPN", "two-letter"),
        ("EXPOSURE_TWEAK_GUESSES", "-1", "whole number"),
        ("EXPOSURE_TWEAK_GUESSES", "1001", "to 1000"),
        ("EXPOSURE_TWEAK_GUESSES", "many", "0 (off)"),
    ],
)
def test_invalid_values_name_the_variable(
    tmp_path: Path, variable: str, value: str, fragment: str
) -> None:
    environ = {"EXPOSURE_PEPPER": PEPPER, variable: value}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ, env_file=tmp_path / ".env")
    assert caught.value.variable == variable
    assert fragment in str(caught.value)


def test_several_webhook_secrets_for_rotation(tmp_path: Path) -> None:
    settings = load_settings(
        {"EXPOSURE_PEPPER": PEPPER, "EXPOSURE_WEBHOOK_SECRET": "whsec_YQ== whsec_Yg==,whsec_Yw=="},
        env_file=tmp_path / ".env",
    )
    assert [key.reveal() for key in settings.webhook_secrets] == [b"a", b"b", b"c"]


def test_case_sensitive_login_ids_flag(tmp_path: Path) -> None:
    settings = load_settings(
        {"EXPOSURE_PEPPER": PEPPER, "EXPOSURE_LOGIN_ID_CASE_SENSITIVE": "true"},
        env_file=tmp_path / ".env",
    )
    assert settings.login_id_case_sensitive is True


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("EXPOSURE_INGEST_BATCH_EVENTS", "lots", "whole number"),
        ("EXPOSURE_INGEST_BATCH_EVENTS", "0", "positive"),
        ("EXPOSURE_API_MAX_BODY", "big", "must be a int"),
        ("EXPOSURE_WEBHOOK_TIMEOUT", "-1", "positive"),
        ("EXPOSURE_WEBHOOK_RETRY_HOURS", "three days", "must be a float"),
        ("EXPOSURE_REPORT_LANG", "JA", "one of ja, en"),  # exact, unlike connector choices
        ("EXPOSURE_LOG_FORMAT", "xml", "one of json, text"),
        ("EXPOSURE_API_LISTEN", "8080", "host:port"),
        ("EXPOSURE_SMTP_URL", "mail.example", "smtp://"),
        ("EXPOSURE_BROKER_DOMAINS", "https://mirai-sec.co.jp/", "URL"),
    ],
)
def test_more_invalid_values_name_the_variable(
    tmp_path: Path, variable: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"EXPOSURE_PEPPER": PEPPER, variable: value}, env_file=tmp_path / ".env")
    assert caught.value.variable == variable
    assert fragment in str(caught.value)


def test_ingest_batch_size_comes_from_the_env_file(tmp_path: Path) -> None:
    assert (
        load_settings({"EXPOSURE_PEPPER": PEPPER}, env_file=tmp_path / ".env").ingest_batch_events
        == 500_000
    )
    env_file = tmp_path / ".env"
    env_file.write_text(f"EXPOSURE_PEPPER={PEPPER}\nEXPOSURE_INGEST_BATCH_EVENTS=1234\n")
    assert load_settings({}, env_file=env_file).ingest_batch_events == 1234


def test_core_and_connectors_share_one_grammar() -> None:
    from connectors.base import ConnectorSettings
    from exposure.settings import Settings
    from exposure.variables import EnvironSettings

    assert issubclass(Settings, EnvironSettings) and issubclass(ConnectorSettings, EnvironSettings)
    names = [variable.name for variable in Settings.variables()]
    assert len(names) == len(set(names)) and "EXPOSURE_INGEST_BATCH_EVENTS" in names
    pepper = next(v for v in Settings.variables() if v.name == "EXPOSURE_PEPPER")
    assert pepper.required and pepper.secret


def test_no_pepper_is_generated_where_generation_is_off(tmp_path: Path) -> None:
    """The Docker image sets EXPOSURE_GENERATE_PEPPER=false: a pepper made in a container
    would be lost with it (docs/decisions/pepper-in-containers.md)."""
    env_file = tmp_path / ".env"
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"EXPOSURE_GENERATE_PEPPER": "false"}, env_file=env_file)
    assert caught.value.variable == "EXPOSURE_PEPPER"
    assert "openssl rand -hex 32" in str(caught.value)
    assert not env_file.exists()
    with pytest.raises(ConfigurationError) as wrong:
        load_settings({"EXPOSURE_GENERATE_PEPPER": "perhaps"}, env_file=env_file)
    assert wrong.value.variable == "EXPOSURE_GENERATE_PEPPER"
    # With a pepper set, the setting changes nothing.
    settings = load_settings(
        {"EXPOSURE_GENERATE_PEPPER": "false", "EXPOSURE_PEPPER": "ab" * 32}, env_file=env_file
    )
    assert settings.generate_pepper is False


def test_a_pepper_that_cannot_be_kept_is_not_used(tmp_path: Path) -> None:
    env_file = tmp_path / "no-such-folder" / ".env"
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, env_file=env_file)
    assert caught.value.variable == "EXPOSURE_PEPPER"
    assert "cannot be kept" in str(caught.value) and str(env_file) in str(caught.value)
