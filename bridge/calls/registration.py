"""Registering for the duration of one call when the request says sipRegisterRequired."""

from __future__ import annotations

import asyncio
import logging

from sipmessage import URI, Address

from bridge.calls.services import Services
from bridge.sip.addressing import Destination, bracket
from bridge.sip.digest import Credentials
from bridge.sip.events import CallEvent
from bridge.sip.message import new_call_id
from bridge.sip.registration import (
    Registered,
    Registration,
    RegistrationEvent,
    RegistrationFailed,
    RegistrationSettings,
    Unregistered,
)
from bridge.sip.target import DEFAULT_SIP_PORT, from_uri

log = logging.getLogger("bridge.session")
UNREGISTER_WAIT = 5.0


class RegistrationError(Exception):
    """The registrar refused or did not answer; the message says which."""


class CallRegistration:
    """REGISTER before the call, unREGISTER after it; events arrive on a queue of its own."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.call_id = ""
        self._events: asyncio.Queue[CallEvent | RegistrationEvent] = asyncio.Queue()
        self._registered = False

    async def register(
        self,
        login: str,
        domain: str,
        port: int | None,
        credentials: Credentials,
        destination: Destination,
        local: tuple[str, int],
    ) -> int:
        """Register and return the granted interval; raise :class:`RegistrationError`."""
        self.call_id = new_call_id(local[0])
        aor = from_uri(login, domain)
        settings = RegistrationSettings(
            call_id=self.call_id,
            registrar=URI(scheme="sip", host=domain, port=None if port in (None, DEFAULT_SIP_PORT) else port),
            aor=aor,
            contact=Address(uri=URI(scheme="sip", host=bracket(local[0]), port=local[1], user=aor.user)),
            destination=destination,
            local_address=local,
            credentials=credentials,
            expires=self.services.config.sip.register_expires,
            user_agent=self.services.config.sip.user_agent,
            timers=self.services.timers,
        )
        self.services.signalling().register(Registration(settings), self._events.put_nowait)
        while True:
            event = await self._events.get()
            if isinstance(event, Registered):
                self._registered = True
                return event.expires
            if isinstance(event, RegistrationFailed):
                self.services.signalling().forget(self.call_id)
                raise RegistrationError(event.describe())

    async def unregister(self) -> None:
        """Remove our binding (expires=0); bounded wait for the registrar's answer."""
        if not self._registered:
            return
        self._registered = False
        self.services.signalling().unregister(self.call_id)
        try:
            async with asyncio.timeout(UNREGISTER_WAIT):
                while not isinstance(await self._events.get(), Unregistered):
                    pass
        except TimeoutError:
            log.warning("registrar did not answer our unREGISTER in %s s", UNREGISTER_WAIT)
        finally:
            self.services.signalling().forget(self.call_id)
