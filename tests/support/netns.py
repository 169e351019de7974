"""A network namespace joined to this one by a veth pair, for faults that loopback cannot show.

The test creates it (``ip netns``, ``ip link``, ``ip route`` from iproute2; root needed, as in CI)
and removes it. :meth:`black_hole` adds a blackhole route inside the namespace for this side's
address: packets from here still arrive there, nothing comes back (a TCP peer that vanished
without a reset, as a dead NAT or a cut link looks); :meth:`restore` removes it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time

import pytest

_made = itertools.count()  # each namespace of a run gets its own names and subnet, whatever the last one left


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Namespace:
    def __init__(self, index: int = 0) -> None:
        serial = next(_made)
        tag = f"{os.getpid() % 10000}{index}{serial % 100}"
        self.name, self.outer, self.inner = f"brns{tag}", f"brA{tag}", f"brB{tag}"
        subnet = 10 + (os.getpid() + index * 37 + serial) % 200
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
        """Remove the namespace and the veth pair; a namespace still busy (a peer inside it was just
        stopped) is tried again for a few seconds."""
        subprocess.run(["ip", "link", "del", self.outer], check=False, capture_output=True)
        for _ in range(25):
            done = subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True, text=True)
            listed = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True).stdout
            if self.name not in listed.split():
                return
            time.sleep(0.2)
        print(f"network namespace {self.name} could not be removed: {done.stderr.strip()}")
