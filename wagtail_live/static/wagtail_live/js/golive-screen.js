// The Go Live screen's own behaviour: reveal and copy the stream key, keep the
// status badge and elapsed time current, and make double submits harmless.
// The camera (browser ingest) lives in its own module.

const root = document.querySelector("[data-live-golive]");

function revealToggle(button) {
  const input = document.getElementById(button.dataset.liveReveal);
  const shown = input.type === "text";
  input.type = shown ? "password" : "text";
  button.setAttribute("aria-pressed", String(!shown));
  button.textContent = shown ? button.dataset.showLabel || "Show" : button.dataset.hideLabel || "Hide";
}

async function copyField(button) {
  const input = document.getElementById(button.dataset.liveCopy);
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // Clipboard API needs a secure context; fall back to selecting the text.
    const type = input.type;
    input.type = "text";
    input.select();
    document.execCommand("copy");
    input.type = type;
  }
  const label = button.textContent;
  button.textContent = "✓";
  setTimeout(() => (button.textContent = label), 1200);
}

function formatElapsed(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

function tickElapsed() {
  const el = root.querySelector("[data-live-elapsed]");
  if (!el || !el.dataset.startedAt || root.dataset.status !== "live") return;
  const started = Date.parse(el.dataset.startedAt);
  el.textContent = formatElapsed(Math.max(0, (Date.now() - started) / 1000));
}

function applyStatus(data) {
  const previous = root.dataset.status;
  root.dataset.status = data.status;
  const badge = root.querySelector("[data-live-status-badge]");
  badge.textContent = data.status_label;
  badge.className = `w-live-badge w-live-badge--${data.status}`;
  const elapsed = root.querySelector("[data-live-elapsed]");
  if (data.started_at) elapsed.dataset.startedAt = data.started_at;
  const end = root.querySelector("[data-live-end]");
  if (end) end.hidden = data.status !== "live";
  const goForm = root.querySelector("[data-live-go-form]");
  if (goForm) goForm.hidden = data.status !== "scheduled" && data.status !== "ready";
  if (previous !== data.status && (data.status === "ended" || data.status === "failed")) {
    window.location.reload();
  }
  // An encoder elsewhere (OBS, another browser) made it live: reload into the live preview,
  // which says which encoder feeds it. Not when this page's own camera is the encoder.
  const camera = document.querySelector("[data-live-camera]");
  if (previous !== data.status && data.status === "live" && camera?.dataset.state !== "streaming") {
    window.location.reload();
  }
  root.dispatchEvent(new CustomEvent("live:status", { detail: data, bubbles: true }));
}

async function pollStatus() {
  try {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
    if (response.ok) applyStatus(await response.json());
  } catch {
    // Offline for a moment: the next poll catches up.
  }
}

if (root) {
  root.addEventListener("click", (event) => {
    const reveal = event.target.closest("[data-live-reveal]");
    if (reveal) revealToggle(reveal);
    const copy = event.target.closest("[data-live-copy]");
    if (copy) copyField(copy);
  });
  // One submit per form: a double click must not post twice. Caught on the document:
  // the End live form lives in Wagtail's dialog, moved to the end of <body>.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(root.contains(form) || form.matches("[data-live-end-form]"))) return;
    if (form.dataset.submitted) event.preventDefault();
    form.dataset.submitted = "1";
  });
  setInterval(tickElapsed, 1000);
  setInterval(pollStatus, 3000);
  tickElapsed();
}
