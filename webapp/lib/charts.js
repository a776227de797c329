// Charts with Chart.js, loaded only by the pages that draw one. The UMD build is one minified
// file that sets the global `Chart` when imported (the ES build is a tree of files).
import { useEffect, useRef } from "preact/hooks";
import { html } from "./html.js";

let loading = null;
function loadChart() {
  loading ??= import("chart.js").then(() => globalThis.Chart);
  return loading;
}

export const PALETTE = ["#0b57d0", "#b3261e", "#8a5a00", "#5b6b7a", "#1e7e34", "#7b1fa2"];

/**
 * A chart; `label` describes it for screen readers (the canvas is an image to them), and the
 * page shows its numbers as text or a table beside it.
 */
export function Chart({ type, data, options, label, height = 240 }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    let live = true;
    loadChart().then((ChartJs) => {
      // gone meanwhile (the seller moved on before Chart.js loaded): nothing to draw on
      if (!live || !canvas.current?.isConnected) return;
      chart.current = new ChartJs(canvas.current, {
        type,
        data,
        options: { animation: false, maintainAspectRatio: false, responsive: true, ...options },
      });
    });
    return () => {
      live = false;
      chart.current?.destroy();
    };
  }, []);
  useEffect(() => {
    if (chart.current) {
      chart.current.data = data;
      chart.current.update("none");
    }
  }, [JSON.stringify(data)]);
  return html`<div class="chart" style=${{ height: `${height}px` }}>
    <canvas ref=${canvas} role="img" aria-label=${label}></canvas>
  </div>`;
}
