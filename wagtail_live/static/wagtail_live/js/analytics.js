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

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// Steps a time axis may tick at: round times a reader expects ("14:05", "14:10", ...).
const TICK_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY,
];
const MAX_TICKS = 8;

/**
 * The x axis for a chart spanning ``spanMs``: ``stepSize`` (ms between ticks, at most
 * MAX_TICKS of them) and ``format(ms)``, a label precise enough that no two ticks read
 * the same: seconds below a minute's step, the date once ticks a day apart (or a span
 * over 20 hours) would repeat the time of day.
 */
export function timeAxis(spanMs) {
  const stepSize = TICK_STEPS.find((step) => spanMs / step <= MAX_TICKS) || TICK_STEPS.at(-1);
  let options;
  if (stepSize >= DAY) {
    options = { month: "short", day: "numeric" };
  } else if (spanMs > 20 * HOUR) {
    options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  } else if (stepSize < MINUTE) {
    options = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  } else {
    options = { hour: "2-digit", minute: "2-digit" };
  }
  return { stepSize, format: (ms) => new Date(ms).toLocaleString(undefined, options) };
}

/** The full date and time of epoch ``ms``, in the browser's time zone (tooltips). */
export function formatTime(ms) {
  return new Date(ms).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function spanOf(points) {
  return points.length ? points[points.length - 1].x - points[0].x : 0;
}

/** Fit the x axis's step and labels to the points' time span (it grows while live). */
function fitTimeAxis(chart) {
  const axis = timeAxis(spanOf(chart.data.datasets[0].data));
  const ticks = chart.options.scales.x.ticks;
  ticks.stepSize = axis.stepSize;
  ticks.callback = (value) => axis.format(value);
}

async function drawViewerChart(canvas) {
  const Chart = await loadChartJs(canvas.dataset.chartjsUrl);
  const data = readJson("wagtail-live-chart-data", { times: [], viewers: [] });
  const text = readJson("wagtail-live-chart-text", { viewers: "Viewers" });
  const points = data.times.map((x, i) => ({ x, y: data.viewers[i] }));
  const axis = timeAxis(spanOf(points));
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
        x: {
          type: "linear",
          ticks: { stepSize: axis.stepSize, callback: (value) => axis.format(value) },
        },
        y: { beginAtZero: true, ticks: { precision: 0 } },
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { title: (items) => formatTime(items[0].parsed.x) } },
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
        fitTimeAxis(chart);
        chart.update("none");
        canvas.dataset.chartReady = String(points.length);
      }
    } catch {
      // Offline for a moment: the next poll catches up.
    }
  };
  setInterval(poll, POLL_MS);
}

// Outside a page (the label functions' unit test runs this module in Node) there is nothing to draw.
if (typeof document !== "undefined") {
  for (const canvas of document.querySelectorAll("[data-live-viewer-chart]")) {
    drawViewerChart(canvas);
  }
}
