// Stream health panel (templates/wagtail_live/admin/includes/stream_health.html): redrawn
// from each "health" message the live socket receives (live.js dispatches "live:health";
// the server sends them to the host and moderators only, see docs/protocol.md).

const text = JSON.parse(document.getElementById("live-health-text")?.textContent || "{}");

/** One line of the facts list for a report ({video, audio, bitrate_kbps, ...}). */
export function describe(report) {
  const { video, audio } = report;
  return {
    video: video ? `${video.codec.toUpperCase()} · ${video.width}×${video.height} · ${video.fps ?? "?"} fps` : text.noVideo,
    keyframe: video ? `${video.keyframe_interval} s` : "—",
    bitrate: report.bitrate_kbps ? `${report.bitrate_kbps} kbit/s` : "—",
    audio: audio
      ? `${audio.codec.toUpperCase()} · ${audio.sample_rate} Hz · ${(text.channels || "%(count)s").replace("%(count)s", audio.channels)}`
      : text.noAudio,
    dropped: String(video?.dropped_frames ?? 0),
  };
}

function render(panel, report) {
  panel.dataset.measured = "";
  panel.querySelector("[data-health-waiting]").hidden = true;
  panel.querySelector("[data-health-facts]").hidden = false;
  for (const [field, value] of Object.entries(describe(report))) {
    const cell = panel.querySelector(`[data-health-field="${field}"]`);
    if (cell) cell.textContent = value;
  }
  const list = panel.querySelector("[data-health-warnings]");
  list.replaceChildren(
    ...report.warnings.map((warning) => {
      const item = document.createElement("li");
      item.className = "help-block help-warning";
      item.dataset.code = warning.code;
      item.textContent = warning.message;
      return item;
    }),
  );
  panel.querySelector("[data-health-ok]").hidden = report.warnings.length > 0;
}

document.addEventListener("live:health", (event) => {
  const report = event.detail?.report;
  if (!report) return;
  for (const panel of document.querySelectorAll("[data-live-health]")) render(panel, report);
});
