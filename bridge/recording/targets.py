"""Where recordings are uploaded: Azure Blob Storage, or an HTTP PUT to a URL template.

Both read the file in chunks in a thread and send what they read; both verify: Azure by the
blob's size and Content-MD5 read back after the commit, HTTP by a 2xx answer (and its ETag,
when the store answers with the MD5 as S3 does for a single PUT). A target returns the file's
URL without any query (a SAS or a pre-signed signature never leaves this module).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

import aiohttp
import yarl

from bridge.recording.config import UploadConfig

if TYPE_CHECKING:  # azure-storage-blob is an optional extra, imported only when configured
    from azure.storage.blob.aio import ContainerClient

log = logging.getLogger("bridge.recording")
CHUNK_BYTES = 4 * 1024 * 1024
CONTENT_TYPES = {"wav": "audio/wav", "wav-ulaw": "audio/wav", "m4a": "audio/mp4"}


class UploadFailed(Exception):
    """One attempt failed; the message says why (it is retried until upload.retry_seconds)."""


@dataclass(frozen=True, slots=True)
class UploadFile:
    path: Path
    relative: str  # the blob name / {path}
    kind: str
    size: int
    md5: bytes
    placeholders: dict[str, str]


class Target(Protocol):
    async def put(self, file: UploadFile) -> str: ...


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as source:
        source.seek(offset)
        return source.read(size)


async def chunks(path: Path, size: int) -> AsyncIterator[bytes]:
    """The file's first ``size`` bytes, read in a thread a chunk at a time."""
    offset = 0
    while offset < size:
        data = await asyncio.to_thread(_read, path, offset, min(CHUNK_BYTES, size - offset))
        if not data:
            raise UploadFailed(f"{path.name} is shorter than {size} bytes")
        offset += len(data)
        yield data


def without_query(url: str) -> str:
    return url.split("?", 1)[0]


class AzureTarget:
    """Block blobs in a container (``azure-storage-blob``, its asyncio client on aiohttp)."""

    def __init__(self, config: UploadConfig) -> None:
        try:
            from azure.storage.blob.aio import ContainerClient  # noqa: F401 - checked at start-up
        except ImportError:
            raise RuntimeError(
                "recording.upload.kind = azure needs the azure-storage-blob package: "
                "pip install 'sip-rtmp-bridge[azure]'"
            ) from None
        self.config = config

    def _container(self) -> ContainerClient:
        from azure.storage.blob.aio import ContainerClient

        # retry_total 0: we retry, with our backoff and our states
        if self.config.azure_container_url:
            return ContainerClient.from_container_url(
                self.config.azure_container_url, retry_total=0, connection_timeout=10
            )
        return ContainerClient.from_connection_string(
            self.config.azure_connection_string, self.config.azure_container, retry_total=0, connection_timeout=10
        )

    async def put(self, file: UploadFile) -> str:
        from azure.core.exceptions import AzureError, ResourceExistsError
        from azure.storage.blob import BlobBlock, ContentSettings

        try:
            async with self._container() as container:
                if not self.config.azure_container_url:
                    with contextlib.suppress(ResourceExistsError):
                        await container.create_container()
                blob = container.get_blob_client("/".join(_checked(part) for part in file.relative.split("/")))
                blocks = []
                index = 0
                async for data in chunks(file.path, file.size):
                    block_id = base64.b64encode(f"{index:08d}".encode()).decode()
                    await blob.stage_block(block_id, data, length=len(data))
                    blocks.append(BlobBlock(block_id))
                    index += 1
                settings = ContentSettings(content_type=CONTENT_TYPES[file.kind], content_md5=bytearray(file.md5))
                await blob.commit_block_list(blocks, content_settings=settings)
                properties = await blob.get_blob_properties()
                stored_md5 = bytes(properties.content_settings.content_md5 or b"")
                if properties.size != file.size or stored_md5 != file.md5:
                    raise UploadFailed(f"the blob has {properties.size} bytes, MD5 {stored_md5.hex() or '-'}")
                return without_query(str(blob.url))
        except AzureError as exc:
            raise UploadFailed(f"Azure: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


class HttpPutTarget:
    """``PUT`` to ``upload.http_url`` with its placeholders filled (S3/GCS pre-signed URLs, or a proxy)."""

    def __init__(self, config: UploadConfig) -> None:
        self.config = config

    def url_for(self, file: UploadFile) -> str:
        """The template with its placeholders filled, each value percent-encoded with nothing kept
        (RFC 3986 §2.1), ``{path}`` segment by segment; raises UploadFailed for a dot segment or a
        URL whose path, once dot segments are removed (RFC 3986 §5.2.4, as HTTP clients do), leaves
        the template's fixed prefix (a callId of ``../../x`` must not reach another tenant's folder)."""
        values = {**file.placeholders, "name": Path(file.relative).name}

        def fill(match: re.Match[str]) -> str:
            if match[1] == "path":
                return "/".join(_segment(part) for part in file.relative.split("/"))
            return _segment(values.get(match[1], ""))

        url = _PLACEHOLDER.sub(fill, self.config.http_url)
        prefix = _fixed_prefix(self.config.http_url)
        if not yarl.URL(url, encoded=True).path.startswith(yarl.URL(prefix, encoded=True).path):
            raise UploadFailed("the filled upload URL leaves upload.http_url's fixed prefix; not uploaded")
        return url

    async def put(self, file: UploadFile) -> str:
        url = self.url_for(file)
        headers = {
            "Content-Type": CONTENT_TYPES[file.kind],
            "Content-Length": str(file.size),
            "Content-MD5": base64.b64encode(file.md5).decode(),
            **self.config.http_headers,
        }
        timeout = aiohttp.ClientTimeout(total=self.config.timeout, connect=10)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.put(url, data=chunks(file.path, file.size), headers=headers) as reply,
            ):
                if not 200 <= reply.status < 300:
                    raise UploadFailed(f"HTTP {reply.status} {reply.reason or ''}".strip())
                etag = reply.headers.get("ETag", "").strip('"')
                if re.fullmatch(r"[0-9a-f]{32}", etag) and etag != file.md5.hex():
                    raise UploadFailed(f"the store's ETag {etag} is not the file's MD5")
        except (aiohttp.ClientError, OSError) as exc:
            raise UploadFailed(f"HTTP: {type(exc).__name__}: {exc}") from None
        return without_query(url)


_PLACEHOLDER = re.compile(r"{([^{}]+)}")


def _segment(value: str) -> str:
    """One path segment: percent-encoded with nothing safe; ``.``, ``..`` and empty refused."""
    if value in ("", ".", ".."):
        raise UploadFailed(f"a placeholder value {value!r} would make an empty or dot path segment; not uploaded")
    return quote(value, safe="")


def _checked(part: str) -> str:
    """A blob name segment as it is, once :func:`_segment` finds nothing wrong with it."""
    _segment(part)
    return part


def _fixed_prefix(template: str) -> str:
    """What every filled URL must start with: the template up to its first placeholder, and
    within the path only whole segments (``…/rec-{callId}`` keeps ``…/``)."""
    head = template.split("{", 1)[0]
    scheme_end = head.find("://") + 3
    slash = head.rfind("/")
    return head if "?" in head or slash < scheme_end else head[: slash + 1]


def target_for(config: UploadConfig) -> Target | None:
    if config.kind == "azure":
        return AzureTarget(config)
    if config.kind == "http":
        return HttpPutTarget(config)
    return None
