// The Go Live screen's own behaviour: reveal and copy the stream key, keep the
// status badge and elapsed time current, and make double submits harmless; on a
// phone, the studio view (issue 14) and its moderation sheet.
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
  // First, so the camera knows the live ended before the reload (and does not ask to leave).
  root.dispatchEvent(new CustomEvent("live:status", { detail: data, bubbles: true }));
  if (previous !== data.status && (data.status === "ended" || data.status === "failed")) {
    window.location.reload();
  }
  // An encoder elsewhere (OBS, another browser) made it live: reload into the live preview,
  // which says which encoder feeds it. Not when this page's own camera is the encoder.
  const camera = document.querySelector("[data-live-camera]");
  if (previous !== data.status && data.status === "live" && camera?.dataset.state !== "streaming") {
    window.location.reload();
  }
}

// -- the studio view (phones) ------------------------------------------------

// Phones and other narrow or touch screens get the studio view; the toggle's choice wins.
const STUDIO_QUERY = "(max-width: 50em), (pointer: coarse)";
const LAYOUT_KEY = "wagtail_live.golive_layout";

function storedLayout() {
  try {
    return window.localStorage.getItem(LAYOUT_KEY);
  } catch {
    return null; // storage refused (a privacy setting): the screen decides each time
  }
}

function storeLayout(layout) {
  try {
    window.localStorage.setItem(LAYOUT_KEY, layout);
  } catch {
    // as above
  }
}

/** "studio" or "classic": the stored choice, else what the screen is. An ended session is classic. */
export function chooseLayout(status, stored, isPhoneLike) {
  if (status === "ended" || status === "failed") return "classic";
  if (stored === "studio" || stored === "classic") return stored;
  return isPhoneLike ? "studio" : "classic";
}

/**
 * The studio covers the whole screen: what lies under it (Wagtail's sidebar, header, the rest of
 * the page) is made inert, so Tab and a screen reader stay in what can be seen. Wagtail's dialogs,
 * moved to the end of <body>, stay usable.
 */
function setCoveredInert(covered) {
  for (let node = root; node.parentElement && node !== document.body; node = node.parentElement) {
    for (const sibling of node.parentElement.children) {
      if (sibling === node || sibling.matches("script, template, link, style, [data-controller~='w-dialog']")) {
        continue;
      }
      if (covered) {
        sibling.inert = true;
        sibling.dataset.liveStudioInert = "";
      } else if ("liveStudioInert" in sibling.dataset) {
        sibling.inert = false;
        delete sibling.dataset.liveStudioInert;
      }
    }
  }
}

function applyLayout(layout) {
  root.dataset.liveLayout = layout;
  setCoveredInert(layout === "studio");
  document.documentElement.classList.toggle("w-live-studio-open", layout === "studio");
  const toggle = root.querySelector("[data-live-layout-toggle]");
  if (toggle) {
    toggle.textContent = layout === "studio" ? toggle.dataset.classicLabel : toggle.dataset.studioLabel;
  }
}

function setUpLayout() {
  const query = window.matchMedia(STUDIO_QUERY);
  const choose = () => chooseLayout(root.dataset.status, storedLayout(), query.matches);
  applyLayout(choose());
  query.addEventListener?.("change", () => applyLayout(choose()));
  root.querySelector("[data-live-layout-toggle]")?.addEventListener("click", () => {
    const next = root.dataset.liveLayout === "studio" ? "classic" : "studio";
    storeLayout(next);
    applyLayout(next);
  });
}

// -- the moderation sheet: a tap on a chat message in the studio view ------------

function realtime() {
  return root.querySelector("[data-live-realtime]")?.liveRealtime || null;
}

/** The message a chat item shows, as the protocol names its fields. */
function messageOf(item) {
  const userId = item.dataset.userId;
  return {
    id: Number(item.dataset.messageId),
    user_id: userId ? Number(userId) : null,
    display_name: item.querySelector(".live-chat__name")?.textContent || "",
    text: item.querySelector(".live-chat__text")?.textContent || "",
  };
}

function dialogOf(element) {
  return element?.closest("[data-controller~='w-dialog']") || null;
}

function openModerationSheet(item) {
  const live = realtime();
  const sheet = document.querySelector("[data-live-modsheet]");
  if (!live?.can?.moderate || !sheet) return;
  const message = messageOf(item);
  sheet.querySelector("[data-modsheet-name]").textContent = message.display_name;
  sheet.querySelector("[data-modsheet-text]").textContent = message.text;
  // Only what this user may do (the server's state says; wagtail_live/permissions.py):
  // anyone who moderates removes; guests without an account and oneself are not muted or banned.
  const person = message.user_id !== null && message.user_id !== live.userId;
  sheet.querySelector("[data-modsheet-mute]").hidden = !person;
  sheet.querySelector("[data-modsheet-ban]").hidden = !(person && live.can.ban);
  sheet.message = message;
  const dialog = dialogOf(sheet);
  dialog.dispatchEvent(new CustomEvent("w-dialog:show"));
  sheet.querySelector("[data-modsheet-remove]").focus();
}

function moderate(sheet, button) {
  const live = realtime();
  const message = sheet.message;
  if (!live || !message) return;
  const dialog = dialogOf(sheet);
  if (button.matches("[data-modsheet-remove]")) {
    live.send({ type: "mod.remove", message_id: message.id });
  } else if (button.matches("[data-modsheet-mute-seconds]")) {
    const seconds = button.dataset.modsheetMuteSeconds;
    live.send({ type: "mod.mute", user_id: message.user_id, seconds: seconds ? Number(seconds) : null });
  } else if (button.matches("[data-modsheet-ban]")) {
    dialog.dispatchEvent(new CustomEvent("w-dialog:hide"));
    live.askBanReason(message); // the reason, in ban_dialog.html; it sends mod.ban
    return;
  } else {
    return;
  }
  dialog.dispatchEvent(new CustomEvent("w-dialog:hide"));
}

/** A button in each message, so the sheet opens from the keyboard and a screen reader too. */
function addModerateButton(item, label) {
  if (!item.matches?.(".live-chat__message") || item.querySelector("[data-live-moderate]")) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "w-live-moderate";
  button.dataset.liveModerate = "";
  button.textContent = "⋯";
  const name = item.querySelector(".live-chat__name")?.textContent || "";
  button.setAttribute("aria-label", label.replace("%(name)s", name));
  item.append(button);
}

function setUpModeration() {
  const chat = root.querySelector("[data-live-chat]");
  if (!chat) return;
  // The sheet lives in Wagtail's dialog, which is a <template> until Wagtail moves it to the
  // end of <body> (after this module runs): it is looked up when needed, never kept.
  const observer = new MutationObserver((records) => {
    const label = document.querySelector("[data-live-modsheet]")?.dataset.openLabel;
    if (!label || !realtime()?.can?.moderate) return;
    for (const record of records) record.addedNodes.forEach((node) => addModerateButton(node, label));
  });
  observer.observe(chat, { childList: true, subtree: true });
  chat.addEventListener("click", (event) => {
    if (root.dataset.liveLayout !== "studio") return;
    const item = event.target.closest(".live-chat__message");
    if (item && !event.target.closest("a, input")) openModerationSheet(item);
  });
  document.addEventListener("click", (event) => {
    const sheet = event.target.closest?.("[data-live-modsheet]");
    const button = event.target.closest?.("button");
    if (sheet && button) moderate(sheet, button);
  });
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
  setUpLayout();
  setUpModeration();
  setInterval(tickElapsed, 1000);
  setInterval(pollStatus, 3000);
  tickElapsed();
}
