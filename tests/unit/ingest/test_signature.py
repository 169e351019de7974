"""Ingest signatures (checked with the twilio package) and route configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from twilio.request_validator import RequestValidator

from bridge.ingest.config import IngestConfig, IngestRoute
from bridge.ingest.signature import token_valid, twilio_signature_valid


def test_twilio_signatures_agree_with_the_twilio_package() -> None:
    token = "12345678901234567890123456789012"
    validator = RequestValidator(token)
    url = "wss://bridge.example.com/ingest/webinar"
    assert twilio_signature_valid(token, url, validator.compute_signature(url, {}))
    assert twilio_signature_valid(
        token, "wss://bridge.example.com:443/ingest/webinar", validator.compute_signature(url, {})
    )
    form = {"CallSid": "CA1", "From": "+14155550100", "To": "+16505550100", "Digits": "1234"}
    http = "https://bridge.example.com/twiml/webinar?callId=x"
    assert twilio_signature_valid(token, http, validator.compute_signature(http, form), form.items())
    assert not twilio_signature_valid(
        token, http, validator.compute_signature(http, {**form, "To": "+1"}), form.items()
    )
    assert not twilio_signature_valid("another-token-another-token-0000", url, validator.compute_signature(url, {}))
    assert not twilio_signature_valid(token, url, "")
    assert token_valid("s" * 20, "s" * 20) and not token_valid("s" * 20, "") and not token_valid("s" * 20, "t" * 20)


def test_no_unauthenticated_route_can_be_configured() -> None:
    route = {"protocol": "acs", "rtmp_url": "rtmp://127.0.0.1/live", "stream": "{callId}"}
    with pytest.raises(ValidationError, match="at least 16 characters"):
        IngestRoute.model_validate({**route, "secret": "short"})
    with pytest.raises(ValidationError, match="secret"):
        IngestRoute.model_validate(route)
    with pytest.raises(ValidationError, match="rtmp_url"):
        IngestRoute.model_validate({**route, "secret": "x" * 16, "rtmp_url": "http://x/live"})
    with pytest.raises(ValidationError, match="route name"):
        IngestConfig.model_validate({"routes": {"a/b": {**route, "secret": "x" * 16}}})
    assert (
        IngestConfig.model_validate({"routes": {"web-1": {**route, "secret": "x" * 16}}}).routes["web-1"].protocol
        == "acs"
    )
