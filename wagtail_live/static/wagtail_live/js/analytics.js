// The viewer chart of the analytics page and the live dashboard, drawn with Chart.js
// (vendored from npm, see scripts/build_vendor.js). Data: a json_script with
// {times: [epoch ms...], viewers: [n...]}. While the session is live the canvas has
// data-samples-url and the chart fetches the newer stored samples every POLL_MS.
// Markup: wagtail_live/admin/includes/viewer_chart.html.

const MAX_LIVE_POINTS = 8640;
const POLL_MS = 10000;

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
        legend: { display: false },
        tooltip: { callbacks: { title: (items) => formatTime(items[0].parsed.x, true) } },
      },
    },
  });
  canvas.dataset.chartReady = String(points.length);
  if (canvas.dataset.samplesUrl) {
    followLiveSamples(canvas, chart);
  }
  return chart;
}

/** Append the samples stored since the last point, every POLL_MS, while the page is open. */
function followLiveSamples(canvas, chart) {
  const points = chart.data.datasets[0].data;
  const poll = async () => {
    const after = points.length ? points[points.length - 1].x : 0;
    try {
      const response = await fetch(`${canvas.dataset.samplesUrl}?after=${after}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) {
        const fresh = await response.json();
        fresh.times.forEach((x, i) => points.push({ x, y: fresh.viewers[i] }));
        points.splice(0, Math.max(0, points.length - MAX_LIVE_POINTS));
        chart.update("none");
        canvas.dataset.chartReady = String(points.length);
      }
    } catch {
      // Offline for a moment: the next poll catches up.
    }
  };
  setInterval(poll, POLL_MS);
}

for (const canvas of document.querySelectorAll("[data-live-viewer-chart]")) {
  drawViewerChart(canvas);
}
