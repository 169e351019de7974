// History view: stored calls with state and date filters, a page at a time.

import { request } from "./api.js";
import { clear, element } from "./dom.js";
import { dateTime, endedAt } from "./format.js";

const PAGE = 25;

export class HistoryView {
  constructor() {
    this.offset = 0;
    this.form = document.getElementById("history-filters");
    this.body = document.getElementById("history-body");
    this.error = document.getElementById("history-error");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.offset = 0;
      this.load();
    });
    document.getElementById("history-prev").addEventListener("click", () => this.page(-PAGE));
    document.getElementById("history-next").addEventListener("click", () => this.page(PAGE));
  }

  page(step) {
    this.offset = Math.max(0, this.offset + step);
    this.load();
  }

  query() {
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(this.offset) });
    const state = this.form.elements.state.value;
    const day = this.form.elements.since.value; // yyyy-mm-dd: calls of that day and later
    if (state) params.set("state", state);
    if (day) params.set("since", day);
    const until = this.form.elements.until.value;
    if (until) params.set("until", nextDay(until)); // the API's until is exclusive
    return params;
  }

  async load() {
    this.error.textContent = "";
    let page;
    try {
      page = await request("GET", `/api/v1/history?${this.query()}`);
    } catch (error) {
      this.error.textContent = error.message;
      return;
    }
    clear(this.body);
    for (const call of page.calls) {
      const ended = endedAt(call);
      const link = element("a", { href: `#/calls/${encodeURIComponent(call.callId)}` }, [call.callId]);
      this.body.append(
        element("tr", {}, [
          element("td", { "data-label": "Call ID" }, [link]),
          element("td", { "data-label": "Callee" }, [call.callee || ""]),
          element("td", { "data-label": "State", class: `state state-${(call.state || "").toLowerCase()}` }, [
            call.state || "",
          ]),
          element("td", { "data-label": "Reason" }, [call.reason || ""]),
          element("td", { "data-label": "Started" }, [dateTime(call.createdAt)]),
          element("td", { "data-label": "Ended" }, [ended ? dateTime(new Date(ended).toISOString()) : "–"]),
        ]),
      );
    }
    if (!page.calls.length) {
      this.body.append(element("tr", {}, [element("td", { colspan: 6 }, ["No stored calls match."])]));
    }
    const last = Math.min(this.offset + PAGE, page.total);
    document.getElementById("history-page").textContent = page.total
      ? `${this.offset + 1}–${last} of ${page.total}`
      : "0 calls";
    document.getElementById("history-prev").disabled = this.offset === 0;
    document.getElementById("history-next").disabled = last >= page.total;
  }
}

function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}
