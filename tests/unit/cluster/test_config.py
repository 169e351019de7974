"""``[cluster]`` settings: names that become Redis keys, URLs, the heartbeat and the TTL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.cluster.config import ClusterConfig
from bridge.cluster.keys import Keys, stream_digest


def test_no_redis_url_means_no_cluster() -> None:
    assert not ClusterConfig().enabled
    assert ClusterConfig(redis_url="redis://127.0.0.1:6379/0", advertise_url="http://10.0.0.5:9091").enabled
    with pytest.raises(ValidationError, match="advertise_url is required"):
        ClusterConfig(redis_url="redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("redis_url", "http://127.0.0.1:6379", "redis://"),
        ("name", "prod env", "letters, digits"),
        ("node_id", "a:b", "letters, digits"),
        ("advertise_url", "10.0.0.5:9091", "http://"),
    ],
)
def test_bad_values_name_the_rule(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ClusterConfig.model_validate({field: value})


def test_the_ttl_must_outlast_two_heartbeats() -> None:
    with pytest.raises(ValidationError, match=r"at least twice cluster\.heartbeat_seconds"):
        ClusterConfig(heartbeat_seconds=3, node_ttl_seconds=5)


def test_the_redis_password_is_a_secret_and_keys_are_namespaced() -> None:
    config = ClusterConfig(redis_url="redis://:hunter2-secret@127.0.0.1/0", advertise_url="http://a:9091")
    assert config.secrets() == ["hunter2-secret"]
    keys = Keys("prod")
    assert keys.call("c1") == "prod:call:c1" and keys.alive("n1") == "prod:alive:n1" and keys.nodes == "prod:nodes"
    digest = stream_digest("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop")
    assert len(digest) == 64 and "abcd" not in digest
