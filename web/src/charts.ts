// uPlot charts that fit their container (a 360 px phone or an operator's wall screen), with
// time axes in the community's zone. Each chart also gets its numbers as a table for screen
// readers (charts are canvases), built by the caller.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { clockTime, dateTime, units } from "./format.js";

export type Chart = { plot: uPlot; update(data: uPlot.AlignedData): void; destroy(): void };

const HEIGHT = 260;

export function timeChart(container: HTMLElement, options: { label: string; series: uPlot.Series[]; yLabel: string; scales?: uPlot.Scales }, data: uPlot.AlignedData): Chart {
  container.setAttribute("role", "img");
  container.setAttribute("aria-label", options.label);
  const width = () => Math.max(280, Math.floor(container.clientWidth || 320));
  const opts: uPlot.Options = {
    width: width(),
    height: HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), units.timeZone),
    series: [{ label: "Time" }, ...options.series],
    scales: { x: { time: true }, ...options.scales },
    axes: [{
      stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.2)" },
      // 24-hour times in the community's zone; dates too when the chart spans more than a day.
      values: (u, splits) => {
        const range = (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0);
        return splits.map((s) => (range > 86_400 ? dateTime(s) : clockTime(s)));
      },
    }, { label: options.yLabel, stroke: "currentColor", size: 60, grid: { stroke: "rgba(128,128,128,0.2)" } }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(opts, data, container);
  const observer = new ResizeObserver(() => {
    const w = width();
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: HEIGHT });
  });
  observer.observe(container);
  return {
    plot,
    update: (next) => plot.setData(next),
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}

export const stepped = uPlot.paths.stepped!({ align: 1 });
export const bars = uPlot.paths.bars!({ size: [0.8, 40] });

/** Colours that read on light and dark backgrounds. */
export const palette = ["#2f7ed8", "#e4572e", "#17a398", "#f2a541", "#8e5ea2", "#5c6f7e", "#c0392b"];
