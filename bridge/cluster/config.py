"""``[cluster]``: several bridges sharing one Redis, so callIds and streams are unique across them.

```toml
[cluster]
redis_url = "redis://127.0.0.1:6379/0"   # "" = no cluster (the default: one host needs no Redis)
name = "prod"                            # every key and channel is namespaced by it
node_id = "bridge-a"                     # "" = the host name
advertise_url = "http://10.0.0.5:9091"   # how the other nodes reach this node's API
peer_networks = ["10.0.0.0/24"]          # where other nodes' advertise_url may point (requests relayed there)
tls_ca_file = ""                         # rediss://: the CA that signs Redis's certificate ("" = system's)
heartbeat_seconds = 2                    # how often this node says it is alive
node_ttl_seconds = 10                    # a node silent this long is lost: its calls end FAILED "node lost"
```
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.net.netpolicy import NetworkPolicy, parse_networks

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PRIVATE_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field("", max_length=2048)
    name: str = "bridge"
    node_id: str = ""
    advertise_url: str = Field("", max_length=2048)
    heartbeat_seconds: float = Field(2.0, gt=0, le=60)
    node_ttl_seconds: float = Field(10.0, gt=0, le=600)
    # Other nodes' advertise_url, as read from Redis, decides where requests (with the caller's
    # token, and bodies with SIP passwords) are relayed: only into these networks. The default is
    # loopback and the private ranges; narrow it to the nodes' own subnet.
    peer_networks: list[str] = Field(default_factory=lambda: list(PRIVATE_NETWORKS))
    tls_ca_file: str = ""  # rediss:// only: the CA bundle that signs Redis's certificate ("" = the system's)

    @property
    def enabled(self) -> bool:
        return bool(self.redis_url)

    @property
    def node(self) -> str:
        """This node's id: ``node_id``, else the host name."""
        return self.node_id or socket.gethostname()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and urllib.parse.urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL (or empty: no cluster)")
        return value

    @field_validator("name", "node_id")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value and not NAME.match(value):
            raise ValueError("use 1 to 64 letters, digits, '.', '_' or '-' (it is part of Redis key names)")
        return value

    @field_validator("peer_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    def peer_policy(self) -> NetworkPolicy:
        return NetworkPolicy(self.peer_networks, "cluster.peer_networks")

    def redis_options(self) -> dict[str, Any]:
        """Keyword arguments for redis-py's from_url besides the URL (TLS: the CA bundle)."""
        if self.tls_ca_file and self.redis_url.startswith("rediss://"):
            return {"ssl_ca_certs": self.tls_ca_file}
        return {}

    @field_validator("advertise_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and urllib.parse.urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL of this node's REST listener")
        return value

    @model_validator(mode="after")
    def _ttl_above_heartbeat(self) -> ClusterConfig:
        if self.enabled and not self.advertise_url:
            raise ValueError(
                "cluster.advertise_url is required with cluster.redis_url: the URL other nodes use to reach "
                "this node's API, e.g. http://10.0.0.5:9091"
            )
        if self.node_ttl_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("cluster.node_ttl_seconds must be at least twice cluster.heartbeat_seconds")
        return self

    def secrets(self) -> list[str]:
        """The Redis password in ``redis_url``, kept out of logs."""
        password = urllib.parse.urlsplit(self.redis_url).password if self.redis_url else None
        return [password] if password else []
