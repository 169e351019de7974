"""The daemon process: start-up and shutdown, command lines, reload, systemd, descriptor limits."""
