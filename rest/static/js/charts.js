// Small line charts of a call's stats over time, drawn on a canvas (no library).

import { element } from "./dom.js";

const WIDTH = 320;
const HEIGHT = 80;

export const SERIES = [
  { key: "level", title: "Audio level", unit: "dBFS", min: -60, max: 0 },
  { key: "loss", title: "Packet loss", unit: "%", min: 0, max: 5 },
  { key: "jitter", title: "Jitter", unit: "ms", min: 0, max: 40 },
  { key: "kbps", title: "Bitrate to RTMP", unit: "kbit/s", min: 0, max: 64 },
];

export function chartFigure(series) {
  const canvas = element("canvas", { width: WIDTH, height: HEIGHT, role: "img", "data-series": series.key });
  const caption = element("figcaption", {}, [series.title]);
  return { figure: element("figure", { class: "chart" }, [caption, canvas]), canvas, caption };
}

export function drawChart(chart, series, samples) {
  const { canvas, caption } = chart;
  const context = canvas.getContext("2d");
  const values = samples.map((sample) => sample[series.key]);
  const latest = values.length ? values[values.length - 1] : null;
  const text = latest === null ? "no data yet" : `${latest.toFixed(1)} ${series.unit}`;
  caption.textContent = `${series.title}: ${text}`;
  canvas.setAttribute("aria-label", `${series.title} over the last ${values.length} seconds, now ${text}`);
  const top = Math.max(series.max, ...values);
  const bottom = Math.min(series.min, ...values);
  context.clearRect(0, 0, WIDTH, HEIGHT);
  context.strokeStyle = "#c8ccd4";
  context.strokeRect(0.5, 0.5, WIDTH - 1, HEIGHT - 1);
  if (values.length < 2) return;
  context.strokeStyle = "#0b5cad";
  context.lineWidth = 2;
  context.beginPath();
  values.forEach((value, index) => {
    const x = (index / (values.length - 1)) * (WIDTH - 4) + 2;
    const y = HEIGHT - 2 - ((value - bottom) / (top - bottom || 1)) * (HEIGHT - 4);
    if (index === 0) context.moveTo(x, y);
    else context.lineTo(x, y);
  });
  context.stroke();
}
