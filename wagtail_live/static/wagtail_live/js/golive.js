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
    this.cameraSelect.addEventListener("change", () => this.openDevices());
    this.microphoneSelect.addEventListener("change", () => this.openDevices());
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      this.say(this.text.unsupported, true);
      return;
    }
    await this.openDevices();
    await this.listDevices();
    navigator.mediaDevices.addEventListener("devicechange", () => this.listDevices());
  }

  say(message, isError = false) {
    this.statusLine.textContent = message;
    this.statusLine.classList.toggle("error", isError);
  }

  /** Start (or switch) the preview to the chosen camera and microphone. */
  async openDevices() {
    if (this.live) {
      return; // switching devices mid-stream would restart the recording
    }
    const constraints = {
      video: {
        width: { ideal: 1280 },
        height: { ideal: 720 },
        frameRate: { ideal: 30 },
        ...(this.cameraSelect.value ? { deviceId: { exact: this.cameraSelect.value } } : {}),
      },
      audio: this.microphoneSelect.value ? { deviceId: { exact: this.microphoneSelect.value } } : true,
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      this.stopTracks();
      this.stream = stream;
      this.preview.srcObject = stream;
      this.say(this.text.ready);
    } catch (error) {
      this.stream = null;
      this.say(`${this.text.noCamera} (${error.name})`, true);
    }
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
    this.connect();
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
    this.say(this.text.live);
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
    this.live = false;
    this.ending = true;
    this.stopRecorder();
    clearInterval(this.timer);
    this.badge.hidden = true;
    this.say(message, isError);
    this.root.dataset.state = isError ? "refused" : "ended";
    this.setButtonsBusy(false);
    this.cameraSelect.disabled = false;
    this.microphoneSelect.disabled = false;
    this.socket?.close();
    if (!isError) {
      this.stopTracks(); // the live is over: turn the camera light off
      this.stream = null;
    }
  }
}

for (const root of document.querySelectorAll("[data-live-camera]")) {
  new CameraStudio(root).init();
}
