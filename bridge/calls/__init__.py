"""Calls: the registry, each call's record and reporting, SIP calls, destinations, presets, the services a call uses."""
