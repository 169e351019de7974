"""The REST API: pydantic request models and the aiohttp application."""
