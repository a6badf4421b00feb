// The live player block: shows a session by its state without a page reload.
//
// scheduled -> countdown in the visitor's local time; live -> low-latency HLS;
// ended -> a notice. The state comes from polling the session's JSON status,
// or from the realtime websocket: dispatch
//   root.dispatchEvent(new CustomEvent("wagtail-live:status", {detail: {status: "live"}}))
// on a [data-live-player] element and polling stops (see docs/going-live.md).
// Markup: wagtail_live/templates/wagtail_live/blocks/live_player.html. The stage around
// the video (the phone's immersive view, our controls, theatre) is viewer.js.

import { loadHlsJs } from "./hlsjs.js";
import { LiveViewer } from "./viewer.js";

const POLL_MS = 5000;
const POLL_MS_FAR_AHEAD = 30000;

// hls.js, tuned for ~1 s segments: stay ~2 segments behind the live edge and
// speed up gently to catch up instead of stalling.
export const HLS_CONFIG = {
  lowLatencyMode: true,
  liveSyncDurationCount: 2,
  liveMaxLatencyDurationCount: 5,
  maxLiveSyncPlaybackRate: 1.2,
  backBufferLength: 30,
  manifestLoadingMaxRetry: 6,
  levelLoadingMaxRetry: 6,
};

/**
 * Seconds behind the live edge to play at, for segments of ``target`` seconds at most
 * (``average`` on average), or null before the playlist is known.
 *
 * Two segments' worth (hls.js's liveSyncDurationCount) is right for the ~1 s segments an
 * encoder with 1 s keyframes gives. An encoder with 10 s keyframes makes 10 s segments,
 * and a count of segments would put viewers 20-30 s behind: one average segment plus
 * 1.5 s behind the end of the newest listed segment is about the least that does not
 * stall, as each segment is listed only once it is whole.
 */
export function liveSyncSeconds(target, average) {
  if (!target) {
    return null;
  }
  const segment = average || target;
  return Math.min(2 * segment, segment + 1.5);
}

// The signed playback grant in a delivery URL: /<session>/<expires>-<signature>/ (docs/delivery.md).
const GRANT_IN_URL = /\/(\d{1,12})-([A-Za-z0-9_-]{16,88})\//;
// Renew this long before the grant expires (it lives minutes; a poll may be late).
const RENEW_BEFORE_MS = 45000;

/** The grant in ``url``: {token, expires (ms)}, or null when the URL carries none. */
export function grantOf(url) {
  const match = GRANT_IN_URL.exec(url || "");
  return match ? { token: `${match[1]}-${match[2]}`, expires: Number(match[1]) * 1000 } : null;
}

/** ``url`` with its grant replaced by ``token`` (unchanged when it carries none). */
export function withGrant(url, token) {
  return token ? url.replace(GRANT_IN_URL, `/${token}/`) : url;
}

/** Split a number of milliseconds into days, hours, minutes, seconds (never negative). */
export function countdownParts(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  return {
    days: Math.floor(total / 86400),
    hours: Math.floor((total % 86400) / 3600),
    minutes: Math.floor((total % 3600) / 60),
    seconds: total % 60,
  };
}

class LivePlayer {
  constructor(root) {
    this.root = root;
    this.text = JSON.parse(root.querySelector("[data-live-player-text] > script").textContent);
    this.video = root.querySelector("[data-live-video]");
    this.countdown = root.querySelector("[data-live-countdown]");
    this.start = root.querySelector("[data-live-start]");
    this.notice = root.querySelector("[data-live-notice]");
    this.audioOnlyNote = root.querySelector("[data-live-audio-only]");
    this.status = root.dataset.status;
    this.playbackUrl = root.dataset.playbackUrl || "";
    this.grant = grantOf(this.playbackUrl);
    this.renewTimer = null;
    this.hls = null;
    this.pollTimer = null;
    this.countdownTimer = null;
    this.realtime = false;
  }

  init() {
    this.showLocalStartTime();
    // The stage around the video: immersive phone view, side by side, theatre (viewer.js).
    this.viewer = new LiveViewer(this.root, this.text).init();
    // live.js (the chat socket inside this player) sends the same updates as "live:status".
    for (const name of ["wagtail-live:status", "live:status"]) {
      this.root.addEventListener(name, (event) => {
        this.realtime = true; // pushed updates make polling unnecessary
        clearTimeout(this.pollTimer);
        this.apply(event.detail);
      });
    }
    this.render();
    this.schedulePoll();
  }

  showLocalStartTime() {
    if (!this.start) {
      return;
    }
    const when = new Date(this.start.getAttribute("datetime"));
    this.startAt = when.getTime();
    this.start.textContent = when.toLocaleString(undefined, {
      dateStyle: "full",
      timeStyle: "short",
    });
  }

  schedulePoll() {
    if (this.realtime || this.status === "ended" || this.status === "failed") {
      return;
    }
    const farAhead = this.startAt && this.startAt - Date.now() > 10 * 60 * 1000;
    this.pollTimer = setTimeout(() => this.poll(), farAhead ? POLL_MS_FAR_AHEAD : POLL_MS);
  }

  async poll() {
    await this.refresh();
    this.schedulePoll();
  }

  /** Fetch the status JSON once and apply it; false when the site refused (403). */
  async refresh() {
    try {
      const response = await fetch(this.root.dataset.statusUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) {
        this.apply(await response.json());
      }
      return response.status !== 403;
    } catch {
      // A network blip: polling (or the next pushed update) tries again.
      return true;
    }
  }

  /**
   * Renew the playback grant before it expires, through status.json. A viewer the site no
   * longer allows (banned, the session made private) gets 403 and no new grant: playback
   * stops when the old one expires.
   */
  scheduleRenewal() {
    clearTimeout(this.renewTimer);
    if (!this.grant || this.status !== "live") {
      return;
    }
    const wait = Math.max(5000, this.grant.expires - Date.now() - RENEW_BEFORE_MS);
    this.renewTimer = setTimeout(async () => {
      const before = this.grant.token;
      const allowed = await this.refresh();
      if (!allowed) {
        return;
      }
      if (this.grant.token === before) {
        // Not renewed (a network blip): try again soon, while the old grant still holds.
        this.grant = { ...this.grant, expires: Math.min(this.grant.expires, Date.now() + 50000) };
      }
      this.scheduleRenewal();
    }, wait);
  }

  /** Take a status from the poll or the realtime socket ({status|state, playback_url?}). */
  apply(update) {
    const status = update.status || update.state;
    if (update.playback_url) {
      this.playbackUrl = update.playback_url;
      // hls.js keeps its URLs; xhrSetup puts the newest grant into each request.
      this.grant = grantOf(update.playback_url) || this.grant;
    }
    if (status === "recording_ready" && update.published && update.media_url) {
      this.showRecording(update); // recordings (issue 6): the page was published
      return;
    }
    if (status === "recording_ready" || !status || status === this.status) {
      if (status === "live" && !this.hls && !this.video?.src) {
        this.render();
      }
      return;
    }
    this.status = status;
    this.root.dataset.status = status;
    this.render();
    if (status === "live" && !this.playbackUrl) {
      // Pushed "status" events carry no playback URL (it is per viewer): ask for it.
      this.refresh();
    }
  }

  /** Recordings (issue 6): swap the "ended" notice's slot for the published recording. */
  showRecording({ media_url: mediaUrl, page_url: pageUrl }) {
    const slot = this.root.querySelector("[data-live-recording]");
    if (!slot || slot.querySelector("video")) {
      return;
    }
    const video = document.createElement("video");
    video.controls = true;
    video.preload = "metadata";
    video.src = mediaUrl;
    video.setAttribute("aria-label", this.root.getAttribute("aria-label") || "");
    slot.replaceChildren(video);
    if (pageUrl) {
      const link = document.createElement("a");
      link.href = pageUrl;
      link.textContent = this.text.recordingPage || pageUrl;
      slot.append(link);
    }
    this.status = "ended";
    this.root.dataset.status = "ended";
    this.render();
  }

  render() {
    const shown = { ready: "scheduled", failed: "ended" }[this.status] || this.status;
    for (const part of this.root.querySelectorAll("[data-live-state]")) {
      part.hidden = part.dataset.liveState !== shown;
    }
    if (shown === "scheduled") {
      this.runCountdown();
    } else {
      clearInterval(this.countdownTimer);
    }
    if (shown === "live") {
      this.play();
    } else {
      this.stopPlayback();
      this.viewer?.leaveImmersive(); // the live ended under the phone view: show the notice
    }
  }

  runCountdown() {
    if (!this.countdown || !this.startAt || this.countdownTimer) {
      return;
    }
    const tick = () => {
      const left = this.startAt - Date.now();
      if (left <= 0) {
        this.countdown.textContent = this.text.startingNow;
        return;
      }
      const { days, hours, minutes, seconds } = countdownParts(left);
      const clock = [hours, minutes, seconds].map((n) => String(n).padStart(2, "0")).join(":");
      const time = days ? `${this.text.days.replace("%(count)s", days)} ${clock}` : clock;
      this.countdown.textContent = this.text.startsIn.replace("%(time)s", time);
    };
    tick();
    this.countdownTimer = setInterval(tick, 1000);
  }

  async play() {
    if (!this.video || !this.playbackUrl || this.hls || this.video.src || this.webrtc) {
      return;
    }
    // Sub-second WebRTC first where the site offers it (webrtc-player.js); HLS otherwise,
    // and as soon as WebRTC fails or the WebRTC audience is full.
    if (this.root.dataset.webrtcUrl && !this.webrtcTried) {
      this.webrtcTried = true;
      const { playWebRTC } = await import("./webrtc-player.js");
      this.webrtc = await playWebRTC({
        video: this.video,
        baseUrl: this.root.dataset.webrtcUrl,
        session: this.root.dataset.session,
        grantToken: () => this.grant?.token,
        onFail: () => {
          this.webrtc = null;
          this.play();
        },
      });
      if (this.webrtc) {
        this.scheduleRenewal();
        return;
      }
    }
    // Metadata tells whether the stream has a picture: an audio-only live (a radio show)
    // shows a note instead of a black box.
    this.video.addEventListener("loadedmetadata", () => this.showAudioOnly(!this.video.videoWidth));
    const Hls = await loadHlsJs(this.root.dataset.hlsjsUrl).catch(() => null);
    // hls.js where Media Source Extensions exist, because its latency is tunable;
    // native HLS (Safari, iOS) where they don't.
    this.scheduleRenewal();
    if (Hls && Hls.isSupported()) {
      this.hls = new Hls({
        ...HLS_CONFIG,
        // Every playlist and segment request carries the current grant, renewed meanwhile.
        xhrSetup: (xhr, url) => xhr.open("GET", withGrant(url, this.grant?.token), true),
      });
      this.hls.on(Hls.Events.BUFFER_CODECS, (_event, tracks) => {
        this.showAudioOnly(Boolean(tracks.audio || tracks.audiovideo) && !tracks.video);
      });
      // hls.js picks the start position before it announces LEVEL_UPDATED, so the first
      // playlist (a media playlist arrives with MANIFEST_LOADED) must set the distance.
      this.hls.on(Hls.Events.MANIFEST_LOADED, (_event, data) => {
        const details = data.levels?.[0]?.details;
        if (details) {
          this.followSegmentLength({ details });
        }
      });
      this.hls.on(Hls.Events.LEVEL_UPDATED, (_event, data) => this.followSegmentLength(data));
      this.hls.on(Hls.Events.ERROR, (_event, data) => this.onHlsError(Hls, data));
      this.hls.on(Hls.Events.FRAG_BUFFERED, () => {
        this.notice.textContent = ""; // playing again after an error
      });
      this.hls.loadSource(this.playbackUrl);
      this.hls.attachMedia(this.video);
    } else if (this.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.video.src = this.playbackUrl;
    }
    this.video.play().catch(() => {
      // Autoplay refused: the visible controls let the visitor start it.
    });
  }

  showAudioOnly(audioOnly) {
    this.root.classList.toggle("is-audio-only", audioOnly);
    if (this.audioOnlyNote) {
      this.audioOnlyNote.hidden = !audioOnly;
    }
  }

  /** Keep the distance from the live edge to what the stream's segments allow. */
  followSegmentLength({ details }) {
    const sync = liveSyncSeconds(details?.targetduration, details?.averagetargetduration);
    if (sync && this.hls.config.liveSyncDuration !== sync) {
      // hls.js reads these on every live reload; seconds win over segment counts.
      this.hls.config.liveSyncDuration = sync;
      this.hls.config.liveMaxLatencyDuration = sync + 3 * details.targetduration;
    }
  }

  onHlsError(Hls, data) {
    if (!data.fatal) {
      return;
    }
    this.notice.textContent = this.text.playbackError;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      this.hls.recoverMediaError();
    } else {
      // The playlist may not exist yet in the first second of a live: retry (with the
      // newest grant, for native HLS too).
      setTimeout(() => this.hls?.loadSource(withGrant(this.playbackUrl, this.grant?.token)), 2000);
    }
  }

  stopPlayback() {
    clearTimeout(this.renewTimer);
    this.hls?.destroy();
    this.hls = null;
    if (this.video?.src) {
      this.video.removeAttribute("src");
      this.video.load();
    }
  }
}

for (const root of document.querySelectorAll("[data-live-player][data-status-url]")) {
  new LivePlayer(root).init();
}
