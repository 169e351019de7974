"""A recording file's view: the worker's last note and the stored row, the newer one winning."""

from __future__ import annotations

from rest.recordings import merged_file

OPENED_ROW = {"path": "a/call_mix.wav", "state": "recording", "bytes": 44, "durationSeconds": 0.0, "upload": {}}


def test_a_file_being_written_shows_the_workers_note() -> None:
    note = {"path": "a/call_mix.wav", "state": "recording", "bytes": 96_044, "durationSeconds": 3.0}
    assert merged_file(note, OPENED_ROW)["bytes"] == 96_044


def test_just_after_its_end_the_note_wins_over_a_row_not_yet_updated() -> None:
    note = {"path": "a/call_mix.wav", "state": "finished", "bytes": 320_044, "durationSeconds": 10.0}
    merged = merged_file(note, OPENED_ROW)
    assert (merged["state"], merged["bytes"], merged["durationSeconds"]) == ("finished", 320_044, 10.0)


def test_once_the_row_is_updated_it_wins_uploads_and_retention_included() -> None:
    note = {"path": "a/call_mix.wav", "state": "finished", "bytes": 320_044, "durationSeconds": 10.0}
    row = {**OPENED_ROW, "state": "deleted", "bytes": 320_044, "durationSeconds": 10.0, "upload": {"state": "done"}}
    merged = merged_file(note, row)
    assert merged["state"] == "deleted" and merged["upload"] == {"state": "done"}
    assert merged_file({}, OPENED_ROW) == OPENED_ROW  # an ended call: the history's row alone
