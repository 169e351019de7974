"""SRTP protection of one call's RTP with the SDES-agreed keys (RFC 3711), via pylibsrtp."""

from __future__ import annotations

import pylibsrtp

from rtp.peer import SrtpKeys

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


class SrtpTransform:
    """Unprotects what the far end sends and protects what we send; failures are counted."""

    def __init__(self, keys: SrtpKeys) -> None:
        self.keys = keys
        profile = _PROFILES[keys.suite]
        inbound = pylibsrtp.Policy(key=keys.inbound, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
        outbound = pylibsrtp.Policy(
            key=keys.outbound, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
        )
        self._inbound = pylibsrtp.Session(inbound)
        self._outbound = pylibsrtp.Session(outbound)
        self.failures = 0

    def unprotect(self, packet: bytes) -> bytes | None:
        """The RTP packet, or None if authentication or replay checks failed."""
        try:
            return bytes(self._inbound.unprotect(packet))
        except pylibsrtp.Error:
            self.failures += 1
            return None

    def protect(self, packet: bytes) -> bytes:
        return bytes(self._outbound.protect(packet))

    def protect_rtcp(self, packet: bytes) -> bytes:
        return bytes(self._outbound.protect_rtcp(packet))

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return bytes(self._inbound.unprotect_rtcp(packet))
        except pylibsrtp.Error:
            self.failures += 1
            return None
