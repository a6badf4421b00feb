// The viewer chart of the analytics page and the live dashboard, drawn with Chart.js
// (vendored from npm, see scripts/build_vendor.js). Data: a json_script with
// {times: [epoch ms...], viewers: [n...]}. On the dashboard, dispatch
//   canvas.dispatchEvent(new CustomEvent("wagtail-live:viewers", {detail: {viewers: 12}}))
// to add a point as counts arrive over the websocket.

const MAX_LIVE_POINTS = 8640;

let chartjsLoading = null;

/** Load the vendored Chart.js once (a UMD script that defines window.Chart). */
function loadChartJs(src) {
  if (window.Chart) {
    return Promise.resolve(window.Chart);
  }
  chartjsLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = () => resolve(window.Chart);
    script.onerror = reject;
    document.head.append(script);
  });
  return chartjsLoading;
}

function readJson(id, fallback) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : fallback;
}

/** "14:05" for epoch ms, in the browser's time zone; with the date when the span is long. */
export function formatTime(ms, withDate) {
  const options = withDate
    ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return new Date(ms).toLocaleString(undefined, options);
}

async function drawViewerChart(canvas) {
  const Chart = await loadChartJs(canvas.dataset.chartjsUrl);
  const data = readJson("wagtail-live-chart-data", { times: [], viewers: [] });
  const text = readJson("wagtail-live-chart-text", { viewers: "Viewers" });
  const points = data.times.map((x, i) => ({ x, y: data.viewers[i] }));
  const span = points.length ? points[points.length - 1].x - points[0].x : 0;
  const withDate = span > 20 * 3600 * 1000;
  const chart = new Chart(canvas, {
    type: "line",
    data: {
      datasets: [
        {
          label: text.viewers,
          data: points,
          borderColor: "#2e1f5e",
          backgroundColor: "rgba(46, 31, 94, 0.15)",
          fill: true,
          pointRadius: points.length > 200 ? 0 : 2,
          borderWidth: 2,
          stepped: true,
        },
      ],
    },
    options: {
      animation: false,
      parsing: false,
      normalized: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: {
        x: { type: "linear", ticks: { callback: (value) => formatTime(value, withDate) } },
        y: { beginAtZero: true, ticks: { precision: 0 } },
      },
      plugins: {
        decimation: { enabled: true, algorithm: "lttb", samples: 1000 },
        legend: { display: false },
        tooltip: { callbacks: { title: (items) => formatTime(items[0].parsed.x, true) } },
      },
    },
  });
  canvas.dataset.chartReady = String(points.length);
  canvas.addEventListener("wagtail-live:viewers", (event) => {
    const dataset = chart.data.datasets[0].data;
    dataset.push({ x: Date.now(), y: event.detail.viewers });
    if (dataset.length > MAX_LIVE_POINTS) {
      dataset.shift();
    }
    chart.update("none");
    canvas.dataset.chartReady = String(dataset.length);
  });
  return chart;
}

for (const canvas of document.querySelectorAll("[data-live-viewer-chart]")) {
  drawViewerChart(canvas);
}
