"""What crosses between the daemon and its media worker processes, and nothing else: the typed
messages and their one serializer (``protocol.py``), the counters' names (``counters.py``) and
the encoder probe's arguments (``probe.py``). Both sides import this package; neither imports
the other (import-linter contracts in ``pyproject.toml``)."""
