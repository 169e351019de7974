"""``[cluster]``: several bridges sharing one Redis, so callIds and streams are unique across them.

```toml
[cluster]
redis_url = "redis://127.0.0.1:6379/0"   # "" = no cluster (the default: one host needs no Redis)
name = "prod"                            # every key and channel is namespaced by it
node_id = "bridge-a"                     # "" = the host name
advertise_url = "http://10.0.0.5:9091"   # how the other nodes reach this node's API
heartbeat_seconds = 2                    # how often this node says it is alive
node_ttl_seconds = 10                    # a node silent this long is lost: its calls end FAILED "node lost"
```
"""

from __future__ import annotations

import re
import socket
import urllib.parse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = Field("", max_length=2048)
    name: str = "bridge"
    node_id: str = ""
    advertise_url: str = Field("", max_length=2048)
    heartbeat_seconds: float = Field(2.0, gt=0, le=60)
    node_ttl_seconds: float = Field(10.0, gt=0, le=600)

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
