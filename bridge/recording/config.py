"""``[recording]``: where recordings go, how long they stay, and where they are uploaded.

```toml
[recording]
directory = "/var/lib/sip-rtmp-bridge/recordings"   # "" = recordings/ in $STATE_DIRECTORY (systemd), else ./recordings
path = "{date}/{callId}_{track}.{ext}"               # {date} {time} {callId} {appKey} {track} {ext}
formats = []                                         # for calls that do not say: wav, wav-ulaw, m4a
max_age_days = 30                                    # 0 = keep
max_total_mb = 0                                     # 0 = no limit; the oldest files go first

[recording.upload]
kind = "azure"                                       # "" | azure | http
azure_connection_string = "..."                      # or azure_container_url = "https://acct.blob.core.windows.net/c?sv=...&sig=..."
azure_container = "recordings"
delete_after_upload = false
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.model import OutputSpec

RecordFormat = Literal["wav", "wav-ulaw", "m4a"]
RECORD_FORMATS: tuple[str, ...] = ("wav", "wav-ulaw", "m4a")
EXTENSIONS = {"wav": "wav", "wav-ulaw": "ulaw.wav", "m4a": "m4a"}
PATH_PLACEHOLDERS = {"date", "time", "callId", "appKey", "track", "ext"}
URL_PLACEHOLDERS = {"date", "callId", "appKey", "track", "ext", "name", "path"}
_PLACEHOLDER = re.compile(r"{([^{}]*)}")


def check_record_formats(formats: Sequence[str], published: OutputSpec) -> tuple[str, ...]:
    """The formats to record for a call publishing ``published`` (its first destination's audio)."""
    if "m4a" in formats and published.codec != "aac":
        raise ValueError(
            "m4a keeps the published AAC without re-encoding, and this call publishes G.711 "
            '(output.codec "pcmu"): record "wav" or "wav-ulaw" instead'
        )
    return tuple(dict.fromkeys(formats))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_pattern(value: str, allowed: set[str]) -> set[str]:
    found = set(_PLACEHOLDER.findall(value))
    unknown = found - allowed
    if unknown:
        raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {', '.join(sorted(allowed))}")
    return found


class UploadConfig(_Section):
    kind: Literal["", "azure", "http"] = ""
    azure_connection_string: str = Field("", repr=False)  # a storage account's (with its key) or one with a SAS
    azure_container_url: str = Field("", repr=False)  # https://<account>.blob.core.windows.net/<container>?<SAS>
    azure_container: str = "recordings"  # with azure_connection_string
    http_url: str = Field("", repr=False)  # PUT target, e.g. "https://store.example.com/rec/{path}"
    http_headers: dict[str, str] = Field(default_factory=dict, repr=False)  # e.g. Authorization; kept secret
    delete_after_upload: bool = False  # only after the store confirmed the size and MD5
    retry_seconds: float = Field(3600.0, gt=0, description="give up on an upload after retrying this long")
    timeout: float = Field(300.0, gt=0, description="seconds one attempt may take")

    @field_validator("http_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        check_pattern(value, URL_PLACEHOLDERS)
        return value

    @model_validator(mode="after")
    def _complete(self) -> UploadConfig:
        if self.kind == "azure" and not (self.azure_connection_string or self.azure_container_url):
            raise ValueError("kind azure needs azure_connection_string or azure_container_url")
        if self.kind == "http" and not self.http_url:
            raise ValueError('kind http needs http_url, e.g. "https://store.example.com/recordings/{path}"')
        return self

    def secrets(self) -> list[str]:
        """What must never reach a log: keys, SAS tokens and header values."""
        found = [*self.http_headers.values()]
        for text in (self.azure_connection_string, self.azure_container_url, self.http_url):
            found += re.findall(r"(?:AccountKey|SharedAccessSignature)=([^;]+)", text)
            if "?" in text:
                found.append(text.split("?", 1)[1])
        return [secret for secret in found if secret]


class RecordingConfig(_Section):
    directory: str = ""
    path: str = "{date}/{callId}_{track}.{ext}"
    formats: list[RecordFormat] = Field(default_factory=list)
    flush_seconds: float = Field(0.5, ge=0.1, le=2.0, description="how often the files on disk are brought up to date")
    max_age_days: float = Field(0.0, ge=0, description="0 = keep")
    max_total_mb: float = Field(0.0, ge=0, description="0 = no limit")
    retention_check_seconds: float = Field(60.0, gt=0)
    upload: UploadConfig = UploadConfig()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        found = check_pattern(value, PATH_PLACEHOLDERS)
        missing = {"callId", "track", "ext"} - found
        if missing:
            raise ValueError(f"must contain {{{sorted(missing)[0]}}} so that every file has a name of its own")
        parts = Path(value).parts
        if value.startswith("/") or ".." in parts or not parts:
            raise ValueError("must be a relative path below recording.directory, without '..'")
        return value

    def resolved_directory(self) -> Path:
        base = Path(self.directory) if self.directory else Path(os.environ.get("STATE_DIRECTORY", ".")) / "recordings"
        return base.absolute()
