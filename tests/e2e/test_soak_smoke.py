"""A short run of the soak harness (bench/soak.py; ``make soak`` runs it for 30 minutes): calls replaced
as they end through the impaired network, and nothing lost or left behind: every call's history row
complete (read with sqlite3), every stream published and unpublished at nginx, no RTP socket still
bound (the kernel's /proc/net/udp), no task more than when idle."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import Soak, passes, print_summary, run

pytestmark = pytest.mark.e2e


def test_a_short_soak_loses_nothing_and_leaves_nothing_behind(tmp_path: Path) -> None:
    result = run(Soak(calls=8, call_seconds=6.0, minutes=0.4, sample_seconds=3.0), tmp_path)
    print()
    print_summary(result, slopes=False)
    assert result["calls"] >= 20 and result["refused"] == 0
    assert result["generator"]["lost"] > 0 and result["generator"]["duplicated"] > 0  # the network was bad
    assert result["historyComplete"] == result["calls"] and result["historyMissing"] == []
    assert result["published"] == result["unpublished"] == result["calls"]
    assert result["rtpSocketsStillBound"] == 0 and result["tasks"]["end"] <= result["tasks"]["idle"]
    assert len(result["samples"]) >= 5 and passes(result, slopes=False)
