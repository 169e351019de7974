"""What the cluster does when a node is lost: its calls end FAILED "node lost", said once.

The survivor that won the reap lock (bridge.cluster.registry) publishes each lost call's final
state on its own bus, so its SSE clients and webhooks see it (once: no other survivor reaps the
same node), and marks the calls in the shared history. A node that finds it was declared lost
hangs its calls up: their callIds and streams may already be in use elsewhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bridge.cluster.registry import LostCall
from bridge.history import FINAL_STATES, HistoryStore
from bridge.history.database import Connection
from bridge.ops.bus import BusEvent, EventBus

NODE_LOST = "node lost"


def publish_lost_calls(bus: EventBus, node: str, calls: list[LostCall]) -> None:
    for call in calls:
        data = {"state": "FAILED", "reason": NODE_LOST, "node": node}
        bus.publish(BusEvent("call.state", call.call_id, call.app, data))


def mark_lost_in_history(history: HistoryStore, node: str, calls: list[LostCall]) -> None:
    """The lost node's rows of these calls end FAILED "node lost" (a shared history only: a SQLite
    file of the lost node is its own, and it marks them at its next start)."""
    if not history.backend.shared or not calls:
        return
    call_ids = [call.call_id for call in calls]

    def mark(db: Connection) -> None:
        finals = ",".join("?" * len(FINAL_STATES))
        for call_id in call_ids:
            rows = db.execute(
                f"SELECT id, view FROM calls WHERE node = ? AND call_id = ? AND state NOT IN ({finals})",
                (node, call_id, *FINAL_STATES),
            )
            for row_id, text in rows:
                view = json.loads(text)
                view.update(state="FAILED", reason=NODE_LOST, active=False)
                db.execute(
                    "UPDATE calls SET state = 'FAILED', reason = ?, ended_at = ?, view = ? WHERE id = ?",
                    (NODE_LOST, datetime.now(UTC).isoformat(), json.dumps(view), row_id),
                )

    history.submit(mark)
