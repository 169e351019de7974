"""A network namespace joined to this one by a veth pair, for faults that loopback cannot show.

The test creates it (``ip netns``, ``ip link``, ``ip route`` from iproute2; root needed, as in CI)
and removes it. :meth:`black_hole` adds a blackhole route inside the namespace for this side's
address: packets from here still arrive there, nothing comes back (a TCP peer that vanished
without a reset, as a dead NAT or a cut link looks); :meth:`restore` removes it.
"""

from __future__ import annotations

import os
import subprocess

import pytest


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Namespace:
    def __init__(self, index: int = 0) -> None:
        tag = f"{os.getpid() % 10000}{index}"
        self.name, self.outer, self.inner = f"brns{tag}", f"brA{tag}", f"brB{tag}"
        subnet = 10 + (os.getpid() + index) % 200
        self.host_address, self.address = f"10.77.{subnet}.1", f"10.77.{subnet}.2"
        try:
            _ip("netns", "add", self.name)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            pytest.fail(f"a network namespace is needed (root and iproute2; CI has both): {exc}")
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _ip("link", "set", self.inner, "netns", self.name)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self.outer)
        _ip("link", "set", self.outer, "up")
        self.run("ip", "addr", "add", f"{self.address}/30", "dev", self.inner)
        self.run("ip", "link", "set", self.inner, "up")
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *argv: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", self.name, *argv], check=True, capture_output=True, text=True)
        return done.stdout

    def black_hole(self) -> None:
        self.run("ip", "route", "add", "blackhole", f"{self.host_address}/32")

    def restore(self) -> None:
        self.run("ip", "route", "del", "blackhole", f"{self.host_address}/32")

    def tcp_states(self, port: int) -> list[str]:
        """The states of the TCP sockets on ``port`` inside the namespace (ss -tan)."""
        lines = self.run("ss", "-tanH", f"sport = :{port}").splitlines()
        return [line.split()[0] for line in lines if line.strip()]

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.outer], check=False, capture_output=True)
