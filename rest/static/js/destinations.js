// A call's RTMP destinations: masked target, platform preset, audio/video, stream state, counters.

import { element } from "./dom.js";
import { number } from "./format.js";

const COLUMNS = ["#", "RTMP target", "Preset", "Audio", "Video", "Stream", "Reconnects", "Bytes sent"];

export function destinationsTable(call) {
  const destinations = call.destinations || [];
  if (!destinations.length) return element("p", {}, ["No destinations."]);
  const rows = destinations.map((d) => {
    const counters = d.counters || {};
    return element("tr", { "data-destination": String(d.index) }, [
      element("td", {}, [String(d.index)]),
      element("td", {}, [element("code", {}, [d.rtmpTarget || "–"])]),
      element("td", {}, [d.preset || "–"]),
      element("td", {}, [d.audio || "–"]),
      element("td", {}, [d.video || "none"]),
      element("td", { class: `state state-${(d.streamState || "none").toLowerCase()}`, "data-field": "streamState" }, [
        d.streamState || "–",
      ]),
      element("td", {}, [number(counters.reconnects)]),
      element("td", {}, [number(counters.bytesPublished)]),
    ]);
  });
  const head = element("tr", {}, COLUMNS.map((name) => element("th", { scope: "col" }, [name])));
  return element("div", { class: "table-wrap" }, [
    element("table", { class: "destinations" }, [
      element("caption", { class: "visually-hidden" }, ["Destinations of this call"]),
      element("thead", {}, [head]),
      element("tbody", {}, rows),
    ]),
  ]);
}

// "rtmp://a/live/••••qrst", or the first target and how many more ("… +1").
export function targetsLabel(call) {
  const destinations = call.destinations || [];
  const first = call.rtmpTarget || (destinations[0] && destinations[0].rtmpTarget) || "";
  return destinations.length > 1 ? `${first} +${destinations.length - 1}` : first;
}
