"""The platforms whose media streams the bridge takes, by the name a route's ``protocol`` gives."""

from __future__ import annotations

from bridge.wsmedia.acs import AcsStream
from bridge.wsmedia.core import CoreState, StreamCore
from bridge.wsmedia.ringcentral import RingCentralStream
from bridge.wsmedia.twilio import TwilioStream

CORES: dict[str, type[StreamCore]] = {"twilio": TwilioStream, "acs": AcsStream, "ringcentral": RingCentralStream}


def resumed_core(protocol: str, state: CoreState) -> StreamCore:
    """The core of a started stream another process began (KeyError for an unknown protocol)."""
    core = CORES[protocol]({}, {})
    core.resume(state)
    return core
