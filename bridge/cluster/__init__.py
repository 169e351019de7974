"""Several bridges sharing one Redis: the registry of calls and nodes (``[cluster]``)."""
