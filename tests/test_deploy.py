"""deploy/: the systemd unit and the default config agree on where the data lives."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

from monitor.config import load_config

REPO = Path(__file__).resolve().parent.parent


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(REPO / "deploy" / "monitor.service")
    return parser


def test_unit_puts_the_data_in_its_writable_state_directory(tmp_path: Path) -> None:
    service = unit()["Service"]
    state = "/var/lib/" + service["StateDirectory"]
    assert service["Environment"] == f"MONITOR_DATA_DIR={state}"
    assert service["ProtectSystem"] == "strict"
    etc = tmp_path / "etc" / "monitor"
    etc.mkdir(parents=True)
    shutil.copy(REPO / "config.yaml", etc / "config.yaml")
    data = tmp_path / state.lstrip("/")
    config = load_config(etc / "config.yaml", environ={"MONITOR_DATA_DIR": str(data)})
    assert config.resolve(config.queue.path) == data / "queue.db"
    assert config.sqlite_path(config.store.url) == data / "monitor.db"
    assert config.rule_paths == [etc / "rules"], "watchlists stay beside the config"


def test_unit_checks_the_config_before_it_starts() -> None:
    service = unit()["Service"]
    assert service["ExecStartPre"].endswith("monitor check --config /etc/monitor/config.yaml")
    assert service["ExecStart"].endswith("monitor run --config /etc/monitor/config.yaml")
    assert "1" in service["RestartPreventExitStatus"].split()
