"""SIGHUP reload planning: what applies under live calls, what needs a restart, nothing secret logged."""

from __future__ import annotations

from bridge.config import BridgeConfig
from bridge.daemon.reload import plan_reload

OLD_TOKEN = "a" * 64
NEW_TOKEN = "b" * 64
SECRET = "webhook-secret-never-logged"


def _config(**sections: object) -> BridgeConfig:
    return BridgeConfig.model_validate(sections)


def test_safe_changes_apply_and_bound_ones_keep_their_running_value() -> None:
    running = _config(auth={"tokens": [{"sha256": OLD_TOKEN}]}, rest={"listen": "127.0.0.1:9091"})
    loaded = _config(
        auth={"tokens": [{"sha256": NEW_TOKEN}]},
        rest={"listen": "0.0.0.0:9191"},
        rtp={"port_range": "30000-30999", "timeout": 12},
        limits={"max_calls": 7},
        log={"level": "debug"},
        apps={"crm": {"url": "https://hooks.example/x", "secret": SECRET}},
    )
    plan = plan_reload(running, loaded)
    assert plan.applied == ["apps", "auth.tokens", "limits.max_calls", "log.level", "rtp.timeout"]
    assert plan.refused == ["rest.listen", "rtp.port_range"]
    assert plan.config.auth.tokens[0].sha256 == NEW_TOKEN and plan.config.limits.max_calls == 7
    assert plan.config.rest.listen == "127.0.0.1:9091" and plan.config.rtp.ports == (20000, 29999)
    assert plan.config.rtp.timeout == 12 and "crm" in plan.config.apps
    text = plan.describe()
    assert "restart the service" in text and "rest.listen" in text and "auth.tokens" in text
    assert SECRET not in text and NEW_TOKEN not in text and "0.0.0.0" not in text


def test_unchanged_config_reports_nothing_changed() -> None:
    plan = plan_reload(_config(limits={"max_calls": 3}), _config(limits={"max_calls": 3}))
    assert (plan.applied, plan.refused) == ([], [])
    assert plan.describe() == "config reloaded: nothing changed"
