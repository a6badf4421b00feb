// The viewer's stage around the live video (issue 14, docs/watching.md).
//
// On a phone a tap on the video (or "Watch full screen") opens the immersive view: the
// stage fixed over the page, the picture covering the screen (portrait streams) or
// letterboxed (landscape ones), the chat over the lower part of the video. A tap shows or
// hides the chat, a double tap likes, a sideways swipe hides or shows the chat, Back (the
// browser's, the close button or Escape) leaves. On a wide screen the stage is video and
// chat side by side, with theatre and full-screen buttons.
//
// The chat itself (live.js) is told about likes with a "live:like" event and tells us the
// viewer count with "live:viewers", so neither module needs the other loaded first.
// Strings come translated from the template (the player's json_script).

// The same width as player.css's phone rule: below it the stage opens the immersive view.
const PHONE = "(max-width: 760px)";
const DOUBLE_TAP_MS = 300;
const SWIPE_PX = 60;
// Most big double-tap hearts on the video at once.
const MAX_TAP_HEARTS = 4;

export class LiveViewer {
  constructor(root, text) {
    this.root = root;
    this.text = text;
    this.stage = root.querySelector("[data-live-stage]");
    this.screen = root.querySelector("[data-live-screen]");
    this.video = root.querySelector("[data-live-video]");
    this.realtime = root.querySelector("[data-live-realtime]");
    this.controls = root.querySelector("[data-live-controls]");
    this.button = (name) => root.querySelector(`[data-live-${name}]`);
    this.immersive = false;
    this.pushedHistory = false;
    this.tapTimer = null;
  }

  init() {
    if (!this.stage || !this.video) {
      return this;
    }
    // Our buttons replace the native controls (no seek bar or duration on a live stream).
    this.video.controls = false;
    this.controls.hidden = false;
    this.button("open").hidden = false;
    this.stage.tabIndex = -1;
    this.bind("play", () => this.togglePlay());
    this.bind("mute", () => this.toggleMute());
    this.bind("theatre", () => this.toggleTheatre());
    this.bind("fullscreen", () => this.fullScreen());
    this.bind("open", () => this.open());
    this.bind("close", () => this.leave());
    this.bind("chat-toggle", () => this.toggleChat());
    for (const name of ["play", "pause", "volumechange"]) {
      this.video.addEventListener(name, () => this.showPlayback());
    }
    this.video.addEventListener("loadedmetadata", () => this.readPicture());
    this.video.addEventListener("resize", () => this.readPicture());
    this.screen.addEventListener("click", (event) => this.tapped(event));
    this.watchSwipes();
    this.root.addEventListener("live:viewers", (event) => this.showViewers(event.detail));
    window.addEventListener("popstate", () => {
      if (this.immersive) this.close({ fromHistory: true });
    });
    document.addEventListener("fullscreenchange", () => this.fullScreenChanged());
    this.stage.addEventListener("keydown", (event) => {
      if (!this.immersive) return;
      if (event.key === "Escape") this.leave();
      if (event.key === "Tab") this.keepFocusInside(event);
    });
    this.showPlayback();
    return this;
  }

  bind(name, action) {
    this.button(name)?.addEventListener("click", (event) => {
      event.stopPropagation(); // a button is not a tap on the video
      action();
    });
  }

  // -- the picture ----------------------------------------------------------

  /** ``auto`` frames the picture by its own shape; the block's layout option overrides. */
  readPicture() {
    const layout = this.stage.dataset.layout;
    let picture = layout === "portrait" || layout === "landscape" ? layout : null;
    if (!picture && this.video.videoWidth) {
      picture = this.video.videoHeight > this.video.videoWidth ? "portrait" : "landscape";
    }
    if (picture) this.stage.dataset.picture = picture;
  }

  showViewers({ text }) {
    const slot = this.root.querySelector("[data-live-stage-viewers]");
    if (slot) slot.textContent = text;
  }

  // -- playback buttons ------------------------------------------------------

  togglePlay() {
    if (this.video.paused) this.video.play().catch(() => {});
    else this.video.pause();
  }

  toggleMute() {
    this.video.muted = !this.video.muted;
    if (!this.video.muted && this.video.paused) this.video.play().catch(() => {});
  }

  showPlayback() {
    const play = this.button("play");
    const paused = this.video.paused;
    play.setAttribute("aria-label", paused ? this.text.play : this.text.pause);
    play.classList.toggle("is-paused", paused);
    const mute = this.button("mute");
    const muted = this.video.muted;
    mute.setAttribute("aria-pressed", String(muted));
    mute.setAttribute("aria-label", muted ? this.text.unmute : this.text.mute);
    // Muted (as autoplay requires), the button says "Unmute" in words too: the first thing to tap.
    mute.lastElementChild.textContent = muted ? this.text.unmute : "";
    mute.classList.toggle("is-muted", muted);
  }

  toggleTheatre() {
    const on = !this.root.classList.contains("is-theatre");
    this.root.classList.toggle("is-theatre", on);
    const button = this.button("theatre");
    button.setAttribute("aria-pressed", String(on));
    button.setAttribute("aria-label", on ? this.text.exitTheatre : this.text.theatre);
  }

  /** Phones get the immersive view; wide screens the Fullscreen API (else the immersive view). */
  fullScreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (this.isPhone() || !this.stage.requestFullscreen) {
      this.open();
    } else {
      this.stage.requestFullscreen().catch(() => this.open());
    }
  }

  fullScreenChanged() {
    const on = document.fullscreenElement === this.stage;
    this.root.classList.toggle("is-fullscreen", on);
    this.button("fullscreen").setAttribute(
      "aria-label",
      on ? this.text.exitFullScreen : this.text.fullScreen,
    );
  }

  isPhone() {
    return window.matchMedia(PHONE).matches;
  }

  // -- the immersive view -----------------------------------------------------

  open() {
    if (this.immersive) return;
    this.immersive = true;
    this.returnFocus = document.activeElement;
    this.root.classList.add("is-immersive");
    document.documentElement.classList.add("wagtail-live-immersive-open");
    this.stage.setAttribute("role", "dialog");
    this.stage.setAttribute("aria-modal", "true");
    this.button("close").hidden = false;
    this.setPageInert(true);
    // Back leaves the view instead of the page.
    history.pushState({ wagtailLiveImmersive: true }, "");
    this.pushedHistory = true;
    if (this.video.paused) this.video.play().catch(() => {});
    this.showNewestMessages();
    this.button("close").focus();
  }

  /**
   * A modal view: everything outside the stage (the rest of the page, up to <body>) is made
   * inert while it is open, so neither Tab nor a screen reader reaches what it covers; only the
   * nodes made inert here are given back on close (the page's own inert parts stay inert).
   */
  setPageInert(inert) {
    for (let node = this.stage; node.parentElement && node !== document.body; node = node.parentElement) {
      for (const sibling of node.parentElement.children) {
        if (sibling === node || sibling.matches("script, template, link, style")) continue;
        if (inert && !sibling.inert) {
          sibling.inert = true;
          sibling.dataset.liveImmersiveInert = "";
        } else if (!inert && "liveImmersiveInert" in sibling.dataset) {
          sibling.inert = false;
          delete sibling.dataset.liveImmersiveInert;
        }
      }
    }
  }

  /**
   * Tab past the last control comes back to the first, Shift+Tab before the first to the last;
   * from the stage itself (focused by a click on the video) too: the rest of the page is inert,
   * so the browser would otherwise take the focus out to its own toolbar.
   */
  keepFocusInside(event) {
    const focusable = [
      ...this.stage.querySelectorAll("button, input, select, textarea, a[href]"),
    ].filter((node) => !node.disabled && node.getClientRects().length);
    if (!focusable.length) return;
    const index = focusable.indexOf(document.activeElement);
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && index <= 0) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (index === -1 || index === focusable.length - 1)) {
      event.preventDefault();
      first.focus();
    }
  }

  /** The chat's list got shorter (over the video): keep its newest messages in view. */
  showNewestMessages() {
    const list = this.root.querySelector("[data-live-messages]");
    if (list) list.scrollTop = list.scrollHeight;
  }

  /** The live is over: back to the page, where the "ended" notice is. */
  leaveImmersive() {
    if (this.immersive) this.leave();
  }

  /** The close button and Escape: go back in history, which closes (see popstate). */
  leave() {
    if (this.pushedHistory) history.back();
    else this.close();
  }

  close({ fromHistory = false } = {}) {
    if (!this.immersive) return;
    this.immersive = false;
    this.pushedHistory = this.pushedHistory && !fromHistory;
    this.root.classList.remove("is-immersive");
    document.documentElement.classList.remove("wagtail-live-immersive-open");
    this.stage.removeAttribute("role");
    this.stage.removeAttribute("aria-modal");
    this.setPageInert(false);
    this.button("close").hidden = true;
    this.setChatHidden(false);
    this.showNewestMessages();
    (this.returnFocus || this.button("open"))?.focus?.();
  }

  toggleChat() {
    this.setChatHidden(!this.root.classList.contains("is-chat-hidden"));
  }

  setChatHidden(hidden) {
    this.root.classList.toggle("is-chat-hidden", hidden);
    if (!hidden) this.showNewestMessages();
    const button = this.button("chat-toggle");
    if (button) {
      button.setAttribute("aria-pressed", String(hidden));
      button.setAttribute("aria-label", hidden ? this.text.showChat : this.text.hideChat);
    }
  }

  /** A tap on the video: opens the view on a phone; inside it one tap toggles the chat, two like. */
  tapped(event) {
    if (event.target.closest("button, a, input, select, textarea, form, [data-live-chat]")) return;
    if (!this.immersive) {
      if (this.isPhone()) this.open();
      return;
    }
    if (this.tapTimer) {
      clearTimeout(this.tapTimer);
      this.tapTimer = null;
      this.like(event);
      return;
    }
    this.tapTimer = setTimeout(() => {
      this.tapTimer = null;
      if (this.realtime) this.toggleChat();
    }, DOUBLE_TAP_MS);
  }

  like(event) {
    this.realtime?.dispatchEvent(new CustomEvent("live:like"));
    if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) return;
    // A big heart where the finger was, as well as the small ones live.js floats.
    const burst = this.root.querySelector("[data-live-burst]");
    const box = this.screen.getBoundingClientRect();
    const heart = document.createElement("span");
    heart.className = "wagtail-live-player__tap-heart";
    heart.textContent = "♥";
    heart.style.left = `${event.clientX - box.left}px`;
    heart.style.top = `${event.clientY - box.top}px`;
    heart.addEventListener("animationend", () => heart.remove());
    // Double taps as fast as a finger (or a script) goes keep a few big hearts, not one each.
    while (burst.childElementCount >= MAX_TAP_HEARTS) burst.firstElementChild.remove();
    burst.append(heart);
  }

  watchSwipes() {
    let start = null;
    this.screen.addEventListener(
      "touchstart",
      (event) => {
        const touch = event.touches[0];
        start = event.touches.length === 1 ? { x: touch.clientX, y: touch.clientY } : null;
      },
      { passive: true },
    );
    this.screen.addEventListener("touchend", (event) => {
      if (!start || !this.immersive || !this.realtime) return;
      const touch = event.changedTouches[0];
      const dx = touch.clientX - start.x;
      const dy = touch.clientY - start.y;
      start = null;
      if (Math.abs(dx) < SWIPE_PX || Math.abs(dy) > Math.abs(dx) / 2) return;
      // Swipe towards the end of the line hides the chat (a clear screen), back shows it.
      const forward = getComputedStyle(this.root).direction === "rtl" ? dx < 0 : dx > 0;
      this.setChatHidden(forward);
    });
  }
}
