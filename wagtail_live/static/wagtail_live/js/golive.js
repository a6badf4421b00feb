// The Go Live screen's camera: preview, device pickers, one tap "Go live".
//
// The camera is recorded with MediaRecorder and its chunks are sent as binary
// frames over the ingest websocket (ws/live/<pk>/ingest/); the server pipes
// them into ffmpeg. Markup: wagtail_live/admin/includes/camera.html, inside the
// screen's [data-live-golive]. While a camera is open, the screen's own
// "Go live" and "End live" forms ([data-live-go-form], [data-live-end-form])
// stream it and stop it; without a camera they post as usual (OBS). The End live
// form sits in Wagtail's confirmation dialog, which Wagtail moves to the end of
// <body>: its submit is caught on the document.
//
// On a phone (the studio view, issue 14) the camera follows the screen's orientation (a
// portrait screen asks for a 720x1280 camera), the front/back camera switches by
// facingMode, the microphone mutes by disabling its track (the recording keeps an audio
// track, silent), the screen stays on (Screen Wake Lock) and leaving the page asks first.

// H.264 first: the server copies it and only converts Opus to AAC. VP8/VP9 get
// transcoded, which costs the server CPU, so they are only fallbacks.
export const PREFERRED_TYPES = [
  "video/webm;codecs=h264,opus",
  "video/webm;codecs=avc1,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm;codecs=vp9,opus",
  "video/webm",
];

// Chromium puts a keyframe only every ~5 s by default, and HLS segments can only
// start on a keyframe: ask for one a second to get ~1 s segments (low latency).
const KEYFRAME_INTERVAL_MS = 1000;
const CHUNK_MS = 250;
const RECONNECT_DELAY_MS = 1000;
const VIDEO_BITS_PER_SECOND = 2_500_000;

/** Return the first MIME type this browser's MediaRecorder can produce. */
export function pickMimeType(isSupported = (type) => MediaRecorder.isTypeSupported(type)) {
  return PREFERRED_TYPES.find((type) => isSupported(type)) || "";
}

/** Format a number of seconds as H:MM:SS or M:SS for the elapsed-time display. */
export function formatElapsed(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * getUserMedia's video constraints: 1280x720, or 720x1280 on a portrait screen (a phone held
 * upright), so the camera is not cropped to a square; `facingMode` ("user", "environment") or
 * `deviceId` picks the camera. Ideal, not exact: a camera that cannot do it still opens.
 */
export function videoConstraints({ portrait = false, facingMode = null, deviceId = null } = {}) {
  const [width, height] = portrait ? [720, 1280] : [1280, 720];
  const video = { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: 30 } };
  if (facingMode) video.facingMode = { ideal: facingMode };
  else if (deviceId) video.deviceId = { exact: deviceId };
  return video;
}

/** The facing mode the switch button asks for next. */
export function otherFacingMode(current) {
  return current === "environment" ? "user" : "environment";
}

/** Absolute ws:// or wss:// URL for a path on this site. */
function websocketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

class CameraStudio {
  constructor(root) {
    this.root = root;
    this.ingestPath = root.dataset.ingestUrl;
    this.text = JSON.parse(root.querySelector("[data-camera-text] > script").textContent);
    this.preview = root.querySelector("[data-camera-preview]");
    this.cameraSelect = root.querySelector("[data-camera-select]");
    this.microphoneSelect = root.querySelector("[data-microphone-select]");
    const screen = root.closest("[data-live-golive]") || document;
    this.goForm = screen.querySelector("[data-live-go-form]");
    this.badge = root.querySelector("[data-live-badge]");
    this.elapsed = root.querySelector("[data-live-elapsed-camera]");
    this.statusLine = root.querySelector("[data-camera-status]");
    this.flipButton = root.querySelector("[data-camera-flip]");
    this.muteButton = root.querySelector("[data-microphone-mute]");
    this.portraitQuery = window.matchMedia("(orientation: portrait)");
    this.facingMode = null; // null until the switch button is used: the browser's default camera
    this.microphoneMuted = false;
    this.switching = false;
    // Set while live without a picture (a failed camera switch): the status line keeps it.
    this.noPicture = null;
    this.wakeLock = null;
    this.stream = null;
    this.recorder = null;
    this.socket = null;
    this.live = false;
    this.ending = false;
    this.startedAt = null;
    this.timer = null;
    this.droppedAt = null;
    this.graceMs = Number(root.dataset.reconnectGrace || 30) * 1000;
  }

  async init() {
    this.goForm?.addEventListener("submit", (event) => this.onGoSubmit(event));
    document.addEventListener("submit", (event) => {
      if (event.target.matches("[data-live-end-form]")) this.onEndSubmit(event);
    });
    this.cameraSelect.addEventListener("change", () => {
      this.facingMode = null; // a camera picked by name wins over the switch's facing mode
      this.openDevices();
    });
    this.microphoneSelect.addEventListener("change", () => this.openDevices());
    this.flipButton?.addEventListener("click", () => this.switchCamera());
    this.muteButton?.addEventListener("click", () => this.toggleMicrophone());
    // Turning the phone before going live turns the camera with it (not while live: that
    // would restart the recording).
    this.portraitQuery.addEventListener?.("change", () => this.openDevices());
    document.addEventListener("visibilitychange", () => this.keepScreenOn());
    // Ended elsewhere (the dashboard, another tab): the screen reloads, without asking.
    document.addEventListener("live:status", (event) => {
      if (["ended", "failed"].includes(event.detail?.status)) this.ending = true;
    });
    window.addEventListener("beforeunload", (event) => this.onBeforeUnload(event));
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      this.say(this.text.unsupported, true);
      return;
    }
    await this.openDevices();
    await this.listDevices();
    navigator.mediaDevices.addEventListener("devicechange", () => this.listDevices());
  }

  /** The status line; while live without a picture, that error stays in place of good news. */
  say(message, isError = false) {
    const shown = this.noPicture && !isError ? this.noPicture : message;
    this.statusLine.textContent = shown;
    this.statusLine.classList.toggle("error", isError || Boolean(this.noPicture));
  }

  /** Start (or switch) the preview to the chosen camera and microphone. */
  async openDevices() {
    if (this.live) {
      return; // switching devices mid-stream would restart the recording
    }
    const constraints = {
      video: this.videoConstraints(),
      audio: this.microphoneSelect.value ? { deviceId: { exact: this.microphoneSelect.value } } : true,
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      this.stopTracks();
      this.stream = stream;
      this.preview.srcObject = stream;
      this.applyMicrophoneMute();
      this.say(this.microphoneMuted ? this.text.microphoneOff : this.text.ready);
    } catch (error) {
      this.stream = null;
      this.say(`${this.text.noCamera} (${error.name})`, true);
    }
  }

  videoConstraints() {
    return videoConstraints({
      portrait: this.portraitQuery.matches,
      facingMode: this.facingMode,
      deviceId: this.cameraSelect.value || null,
    });
  }

  /**
   * Front <-> back camera. Before going live the preview just changes; while live the new
   * camera's track replaces the old one and the recording restarts on a fresh ingest
   * connection, the server's resume path (a MediaRecorder stops when its stream's tracks
   * change, and each connection carries one complete WebM stream).
   */
  async switchCamera() {
    if (this.switching || this.ending || !this.stream) return;
    const previous = this.facingMode;
    this.facingMode = otherFacingMode(this.facingMode || this.currentFacingMode());
    if (!this.live) {
      await this.openDevices();
      await this.listDevices();
      return;
    }
    this.switching = true;
    this.flipButton.disabled = true;
    this.noPicture = null; // this switch tells again whether there is a picture
    this.say(this.text.switching);
    await this.stopRecording(); // its last chunk goes out on the current connection
    // Some phones open one camera at a time: the old one goes first.
    this.stream.getVideoTracks().forEach((track) => track.stop());
    let { video, error } = await this.openCamera();
    if (!video) {
      this.facingMode = previous; // the other camera would not open: back to the one before
      ({ video, error } = await this.openCamera());
    }
    // Neither opened: the live goes on with sound only, and the host is told until a switch
    // brings a picture back (the button stays usable for that).
    this.noPicture = video ? null : `${this.text.noPicture || this.text.noCamera} (${error.name})`;
    if (this.noPicture) this.say(this.noPicture, true);
    this.root.dataset.picture = video ? "on" : "none";
    this.stream = new MediaStream([...(video ? [video] : []), ...this.stream.getAudioTracks()]);
    this.preview.srcObject = this.stream;
    this.socket?.close(1000); // onSocketClosed connects again at once, with the new stream
  }

  /** `{video}`: a video track from the camera the constraints name, or `{video: null, error}`. */
  async openCamera() {
    try {
      const camera = await navigator.mediaDevices.getUserMedia({ video: this.videoConstraints() });
      return { video: camera.getVideoTracks()[0], error: null };
    } catch (error) {
      return { video: null, error };
    }
  }

  /** Stop the recorder; resolves once its last chunk has been handed to the socket. */
  stopRecording() {
    const recorder = this.recorder;
    this.recorder = null;
    if (!recorder || recorder.state === "inactive") return Promise.resolve();
    return new Promise((resolve) => {
      recorder.addEventListener("stop", resolve, { once: true });
      recorder.stop();
    });
  }

  /** The facing mode of the camera in use, when the browser tells ("user" otherwise). */
  currentFacingMode() {
    return this.stream?.getVideoTracks()[0]?.getSettings().facingMode || "user";
  }

  /** Mute keeps the audio track (disabled: silence), so the recording's audio stays continuous. */
  toggleMicrophone() {
    this.microphoneMuted = !this.microphoneMuted;
    this.applyMicrophoneMute();
    this.say(this.microphoneMuted ? this.text.microphoneOff : this.live ? this.text.live : this.text.ready);
  }

  applyMicrophoneMute() {
    this.stream?.getAudioTracks().forEach((track) => (track.enabled = !this.microphoneMuted));
    this.muteButton?.setAttribute("aria-pressed", String(this.microphoneMuted));
    this.root.dataset.microphone = this.microphoneMuted ? "muted" : "on";
  }

  /**
   * Keep the screen on while live (Screen Wake Lock). The browser releases the lock when the
   * page is hidden, so it is asked again on visibilitychange. A refusal (no permission, a
   * browser without the API, a headless one) is noted on the root and changes nothing else.
   */
  async keepScreenOn() {
    if (!this.live || this.ending || document.visibilityState !== "visible") return;
    if (this.wakeLock && !this.wakeLock.released) return;
    if (!navigator.wakeLock) {
      this.root.dataset.wakeLock = "unsupported";
      return;
    }
    try {
      this.wakeLock = await navigator.wakeLock.request("screen");
      this.root.dataset.wakeLock = "on";
      this.wakeLock.addEventListener("release", () => {
        if (this.root.dataset.wakeLock === "on") this.root.dataset.wakeLock = "released";
      });
    } catch (error) {
      this.wakeLock = null;
      this.root.dataset.wakeLock = `refused:${error.name}`;
    }
  }

  releaseScreen() {
    const lock = this.wakeLock;
    this.wakeLock = null;
    this.root.dataset.wakeLock = "off";
    lock?.release().catch(() => {});
  }

  /** Leaving the page (reload, back, closing the tab) while live would cut the stream: ask first. */
  onBeforeUnload(event) {
    if (!this.live || this.ending) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers ask only when returnValue is set
  }

  /** Fill the pickers; labels are only available once permission was granted. */
  async listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, fallbackLabel) => {
      const current = this.stream?.getTracks().find((t) => t.kind === kind.replace("input", ""));
      const currentId = current?.getSettings().deviceId;
      select.replaceChildren(
        ...devices
          .filter((device) => device.kind === kind)
          .map((device, index) => {
            const option = new Option(device.label || `${fallbackLabel} ${index + 1}`, device.deviceId);
            option.selected = device.deviceId === currentId;
            return option;
          }),
      );
    };
    fill(this.cameraSelect, "videoinput", this.text.camera);
    fill(this.microphoneSelect, "audioinput", this.text.microphone);
  }

  stopTracks() {
    this.stream?.getTracks().forEach((track) => track.stop());
  }

  onGoSubmit(event) {
    if (!this.stream) {
      return; // no camera: the form starts the session for an external encoder
    }
    event.preventDefault();
    delete this.goForm.dataset.submitted; // let the screen's double-submit guard re-arm
    this.goLive();
  }

  onEndSubmit(event) {
    if (!this.live) {
      return;
    }
    event.preventDefault();
    // Close Wagtail's confirmation dialog; the status line tells what happens next.
    event.target.closest("[data-controller~='w-dialog']")?.dispatchEvent(new CustomEvent("w-dialog:hide"));
    this.endLive();
  }

  setButtonsBusy(busy) {
    for (const button of document.querySelectorAll("[data-live-go], [data-live-end]")) {
      button.disabled = busy;
    }
  }

  /** One tap: open the ingest socket, then record and send chunks. */
  goLive() {
    if (this.live || !this.stream) {
      return;
    }
    this.live = true;
    this.ending = false;
    this.droppedAt = null;
    // The screen's status poll sees the session go live: this camera feeds it.
    this.root.dataset.state = "streaming";
    this.setButtonsBusy(true);
    this.cameraSelect.disabled = true;
    this.microphoneSelect.disabled = true;
    this.say(this.text.connecting);
    // The "low latency" switch (whip_fields.html): WebRTC through WHIP instead of the socket.
    const lowLatency = document.querySelector("[data-live-low-latency]");
    if (lowLatency?.checked) {
      this.connectWhip(lowLatency);
    } else {
      this.connect();
    }
  }

  /** Low latency: publish the camera over WebRTC (whip-publish.js); the server goes live on media. */
  async connectWhip(toggle) {
    try {
      const { publishWhip } = await import("./whip-publish.js");
      this.whip = await publishWhip({
        stream: this.stream,
        url: toggle.dataset.whipUrl,
        token: toggle.dataset.whipToken,
        onGone: () => this.live && !this.ending && this.finish(this.text.refused, true),
      });
      this.showLive(Date.now());
    } catch (error) {
      this.finish(error.message || this.text.refused, true);
    }
  }

  connect() {
    const socket = new WebSocket(websocketUrl(this.ingestPath));
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => this.startRecorder());
    socket.addEventListener("message", (event) => this.onServerMessage(event));
    socket.addEventListener("close", (event) => this.onSocketClosed(socket, event));
  }

  startRecorder() {
    const mimeType = pickMimeType();
    const options = {
      mimeType,
      videoBitsPerSecond: VIDEO_BITS_PER_SECOND,
      videoKeyFrameIntervalDuration: KEYFRAME_INTERVAL_MS,
    };
    // Each connection gets a fresh recorder, so the server always receives a
    // complete WebM stream starting with its header (a resume included).
    try {
      this.recorder = new MediaRecorder(this.stream, options);
    } catch (error) {
      this.finish(`${this.text.unsupported} (${error.name})`, true);
      return;
    }
    this.socket.send(JSON.stringify({ type: "start", mime: this.recorder.mimeType || mimeType }));
    this.recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size && this.socket?.readyState === WebSocket.OPEN) {
        this.socket.send(event.data);
      }
    });
    this.recorder.start(CHUNK_MS);
  }

  stopRecorder() {
    if (this.recorder && this.recorder.state !== "inactive") {
      this.recorder.stop();
    }
    this.recorder = null;
  }

  onServerMessage(event) {
    if (typeof event.data !== "string") {
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "live") {
      this.droppedAt = null;
      this.showLive(message.started_at ? Date.parse(message.started_at) : Date.now());
    } else if (message.type === "ended") {
      this.finish(this.text.ended);
    } else if (message.type === "error") {
      this.say(message.message || message.code, true);
    }
  }

  onSocketClosed(socket, event) {
    if (socket !== this.socket) {
      return;
    }
    this.stopRecorder();
    if (this.ending || !this.live) {
      return;
    }
    if (this.switching) {
      // Our own close for a camera switch: the next connection resumes the same session at once.
      this.switching = false;
      this.flipButton.disabled = false;
      this.droppedAt = Date.now();
      this.connect();
      return;
    }
    const resuming = this.droppedAt !== null;
    const withinGrace = resuming && Date.now() - this.droppedAt < this.graceMs;
    // 4009 while resuming: the server has not noticed our old connection is gone yet.
    const final = event.code === 4000 || event.code === 4003 || (event.code === 4009 && !resuming);
    if (final || (resuming && !withinGrace)) {
      // Refused or finished for good (see consumers/ingest.py): don't retry.
      this.finish(event.reason || this.text.refused, true);
      return;
    }
    // A dropped network: resume into the same session within the grace period.
    this.droppedAt ??= Date.now();
    this.say(this.text.reconnecting, true);
    setTimeout(() => this.live && !this.ending && this.connect(), RECONNECT_DELAY_MS);
  }

  showLive(startedAt) {
    this.startedAt = startedAt;
    this.badge.hidden = false;
    this.setButtonsBusy(false);
    // Show End live at once; the screen's status poll would take a few seconds.
    document.querySelector("[data-live-end]")?.removeAttribute("hidden");
    if (this.goForm) {
      this.goForm.hidden = true;
    }
    this.say(this.microphoneMuted ? this.text.microphoneOff : this.text.live);
    this.keepScreenOn();
    // The screen's status poll takes a few seconds; the studio view shows the live controls now.
    const screen = this.root.closest("[data-live-golive]");
    if (screen) {
      screen.dataset.status = "live";
      const elapsed = screen.querySelector("[data-live-elapsed]");
      if (elapsed && !elapsed.dataset.startedAt) elapsed.dataset.startedAt = new Date(startedAt).toISOString();
    }
    clearInterval(this.timer);
    const tick = () => {
      this.elapsed.textContent = formatElapsed((Date.now() - this.startedAt) / 1000);
    };
    tick();
    this.timer = setInterval(tick, 1000);
  }

  /** End live: flush the recorder, tell the server, which ends the session. */
  endLive() {
    if (!this.live) {
      return;
    }
    this.ending = true;
    this.setButtonsBusy(true);
    this.say(this.text.ending);
    if (this.whip) {
      // WHIP's DELETE ends the session (views/whip.py).
      this.whip.stop().finally(() => this.finish(this.text.ended));
      return;
    }
    const socket = this.socket;
    const recorder = this.recorder;
    const sendEnd = () => {
      if (socket?.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "end" }));
      }
    };
    if (recorder && recorder.state !== "inactive") {
      // The last chunk arrives in a dataavailable event fired before "stop".
      recorder.addEventListener("stop", sendEnd, { once: true });
      recorder.stop();
    } else {
      sendEnd();
    }
  }

  finish(message, isError = false) {
    this.noPicture = null;
    this.live = false;
    this.ending = true;
    this.switching = false;
    this.stopRecorder();
    this.releaseScreen();
    clearInterval(this.timer);
    this.badge.hidden = true;
    this.say(message, isError);
    this.root.dataset.state = isError ? "refused" : "ended";
    this.setButtonsBusy(false);
    this.cameraSelect.disabled = false;
    this.microphoneSelect.disabled = false;
    this.socket?.close();
    this.whip?.close();
    this.whip = null;
    if (!isError) {
      this.stopTracks(); // the live is over: turn the camera light off
      this.stream = null;
    }
  }
}

for (const root of document.querySelectorAll("[data-live-camera]")) {
  new CameraStudio(root).init();
}
