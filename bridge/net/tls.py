"""Client TLS contexts for SIP and RTMP connections."""

from __future__ import annotations

import logging
import ssl

log = logging.getLogger("bridge.tls")


def client_context(ca_file: str, verify: bool, section: str) -> ssl.SSLContext:
    """Client TLS: the configured CA (or the system store), verification on unless disabled."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        log.warning("%s.tls_verify is false: %s TLS certificates are NOT verified", section, section.upper())
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
