"""Entry point of a media worker process: ``python -m bridge.media.worker_process FD SOCKETS_FD``.

A module of its own so that :mod:`bridge.media.worker` is imported under its own name
(not as ``__main__``): its classes are then the ones the rest of the code (and the stage
profiler) refer to.
"""

from bridge.media.worker import main

main()
