"""The daemon's side of the media workers: the processes and their supervision (``pool.py``),
admission by measured headroom (``admission.py``), and each call's handle on its media
(``handle.py``). Nothing here imports the worker side (``bridge.media``) or PyAV."""
