"""Config loading: TOML, environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config
from bridge.daemon.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_shipped_config_is_valid_and_documents_defaults() -> None:
    config = load_config(REPO / "conf" / "bridge.toml", environ={})
    assert config.rest.listen == "127.0.0.1:9091"
    assert config.rtp.ports == (20000, 29999) and config.rtp.timeout == 30


def test_environment_overrides_toml(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('[rest]\nlisten = "127.0.0.1:1"\n[rtp]\ntimeout = 5\n')
    config = load_config(path, environ={"BRIDGE_REST__LISTEN": "127.0.0.1:9191", "BRIDGE_RTP__LATCH": "true"})
    assert config.rest.listen == "127.0.0.1:9191" and config.rtp.latch is True and config.rtp.timeout == 5


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"BRIDGE_REST__LISTEN": "9091"}, "rest.listen"),
        ({"BRIDGE_RTP__PORT_RANGE": "30000-20000"}, "rtp.port_range"),
        ({"BRIDGE_SIP__LISTEN_ADDRESS": "x"}, "sip.listen_address"),
        ({"BRIDGE_MEDIA__AAC_SAMPLE_RATE": "22050"}, "media.aac_sample_rate"),
        ({"BRIDGE_RTP__TIMEOUT": "soon"}, "rtp.timeout"),
    ],
)
def test_invalid_values_name_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"config key {key}:"):
        load_config(None, environ=environ)


def test_bad_toml_and_missing_file_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rest\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", environ={})


def test_cli_refuses_invalid_config_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[rtp]\nport_range = "abc"\n')
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "rtp.port_range" in capsys.readouterr().err
    assert main(["check-config", "--config", str(REPO / "conf" / "bridge.toml")]) == 0
    assert main(["check-config", str(bad)]) == 2  # the file as a plain argument, as in ExecStartPre
    assert "rtp.port_range" in capsys.readouterr().err
    assert main(["check-config", str(REPO / "conf" / "bridge.toml")]) == 0
    assert "bridge.toml: configuration is valid" in capsys.readouterr().out


def test_list_keys_from_environment_as_json() -> None:
    config = load_config(None, environ={"BRIDGE_SIP__DNS_SERVERS": '["127.0.0.1:5353"]'})
    assert config.sip.dns_server_addresses == [("127.0.0.1", 5353)]
    with pytest.raises(ConfigError, match=r"config key sip\.dns_servers"):
        load_config(None, environ={"BRIDGE_SIP__DNS_SERVERS": '["nonsense"]'})
