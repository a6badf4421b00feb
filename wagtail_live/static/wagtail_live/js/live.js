// Live chat, likes and viewer count for a live session (protocol: docs/protocol.md).
//
// One small ES module, no framework. It fills the [data-live-realtime] blocks rendered by
// templates/wagtail_live/includes/live_chat.html: the player block, the Go Live screen and
// the admin dashboard (which adds moderation buttons for users allowed to moderate).
// Chat text is always inserted with textContent, never as HTML, and every user string (names
// too) inside its own <bdi>, so right-to-left text or bidi controls in it cannot reorder the
// text around it.

const NO_RECONNECT = new Set([4403, 4404]);
const FLOOD_CLOSE = 4008;
const MAX_BACKOFF_MS = 30000;
const LIKE_FLUSH_MS = 250;
// setTimeout's longest delay (about 24.8 days); a longer mute is re-read from `state` instead.
const MAX_TIMER_MS = 2 ** 31 - 1;
// Most hearts one like update (or a burst of taps) floats at once.
const MAX_HEARTS = 6;
// Most hearts floating at the same time, and how many more may start each second: a flood of
// like updates or an auto-clicker on the heart adds none past these (the count still rises).
const MAX_FLOATING_HEARTS = 24;
const HEARTS_PER_SECOND = 12;
// Most chat messages kept on the page (DOM nodes and `messages` entries); older ones are
// dropped as new ones come. The socket's history is the last 50; hours of a busy chat are not
// kept in a phone's memory. The pinned message lives in its own box and is not counted.
const MAX_MESSAGES = 300;
// How often the messages' relative times ("2 min") are redrawn.
const RELATIVE_TIME_MS = 30000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// A user's string (display name, message text): isolated from the text around it.
function userText(className, text) {
  const node = el("bdi", className, text);
  node.dir = "auto";
  return node;
}

// An anonymous browser's tabs share one visitor id, so they count as one viewer (a
// first-party cookie the socket handshake carries; it identifies nothing else). The
// server issues and signs it: `state` carries a new one when the cookie had none
// (or one the server did not sign), and the next connection counts with it.
const VISITOR_COOKIE = "wagtail_live_visitor";

function rememberVisitor(value) {
  if (!value) return;
  // The value is URL-safe base64 and ":" (cookie-safe as is; %-escapes would break the signature).
  document.cookie = `${VISITOR_COOKIE}=${value}; path=/; max-age=31536000; SameSite=Lax`;
}

// Whether this browser liked this session (kept for the tab's life, so a reload keeps the state).
function likedKey(session) {
  return `wagtail_live_liked:${session}`;
}

function storedLiked(session) {
  try {
    return window.sessionStorage.getItem(likedKey(session)) === "1";
  } catch {
    return false; // storage refused (a privacy setting): the state lasts for this page only
  }
}

function storeLiked(session) {
  try {
    window.sessionStorage.setItem(likedKey(session), "1");
  } catch {
    // as above
  }
}

/** "now", "2 min ago", "1 hr ago": in the page's language (Intl), for an ISO time. */
export function relativeTime(iso, now, justNow, locale) {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (!Number.isFinite(seconds) || seconds > -45) return justNow;
  const format = new Intl.RelativeTimeFormat(locale || undefined, { style: "narrow" });
  const minutes = Math.round(seconds / 60);
  if (minutes > -60) return format.format(minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours > -24) return format.format(hours, "hour");
  return format.format(Math.round(hours / 24), "day");
}

function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export class LiveRealtime {
  constructor(root) {
    this.root = root;
    this.path = root.dataset.socketPath;
    this.text = JSON.parse(root.querySelector("[data-live-text]")?.textContent || "{}");
    this.moderationUi = root.dataset.moderation === "1";
    this.messages = new Map();
    this.attempt = 0;
    this.pendingLikes = 0;
    this.likeTimer = null;
    this.lastLikes = null;
    this.heartTokens = MAX_HEARTS;
    this.heartTokensAt = 0;
    this.can = {};
    this.restriction = null;
    this.liked = storedLiked(root.dataset.session);
    this.locale = document.documentElement.lang || undefined;
    this.buildUi();
    // The player's stage (viewer.js) likes on a double tap of the video.
    root.addEventListener("live:like", () => {
      if (this.likeButton && !this.likeButton.disabled) this.tapLike();
    });
    this.timeTimer = setInterval(() => this.refreshTimes(), RELATIVE_TIME_MS);
    this.connect();
  }

  t(key, fallback) {
    return this.text[key] || fallback;
  }

  // -- the page -----------------------------------------------------------

  buildUi() {
    this.viewersEl = this.root.querySelector("[data-live-viewers]");
    const likes = this.root.querySelector("[data-live-likes]");
    const chat = this.root.querySelector("[data-live-chat]");

    if (likes) {
      this.likeButton = el("button", "live-like");
      this.likeButton.type = "button";
      this.likeButton.setAttribute("aria-label", this.t("like", "Like"));
      this.likeButton.dataset.liveLikeButton = "";
      this.likesCount = el("span", "live-like__count", "0");
      this.likesCount.dataset.liveLikesCount = "";
      // "You liked this": visible, and the button is pressed (aria-pressed) from the first tap.
      this.likedEl = el("span", "live-like__you", this.t("liked", "You liked this"));
      this.likedEl.dataset.liveLiked = "";
      this.hearts = el("div", "live-hearts");
      this.hearts.setAttribute("aria-hidden", "true");
      likes.replaceChildren(this.likeButton, this.likesCount, this.likedEl, this.hearts);
      this.likeButton.addEventListener("click", () => this.tapLike());
      this.showLiked();
    }

    if (chat) {
      this.pinnedEl = el("div", "live-chat__pinned");
      this.pinnedEl.hidden = true;
      this.pinnedEl.dataset.livePinned = "";
      this.listEl = el("ol", "live-chat__messages");
      this.listEl.setAttribute("aria-live", "polite");
      this.listEl.dataset.liveMessages = "";
      this.noticeEl = el("p", "live-chat__notice");
      this.noticeEl.setAttribute("role", "status");
      this.noticeEl.dataset.liveChatNotice = "";
      this.form = el("form", "live-chat__form");
      this.input = el("input", "live-chat__input");
      this.input.type = "text";
      this.input.name = "text";
      this.input.autocomplete = "off";
      this.input.placeholder = this.t("placeholder", "Say something…");
      this.input.setAttribute("aria-label", this.t("placeholder", "Say something…"));
      this.input.dataset.liveChatInput = "";
      const send = el("button", "button live-chat__send", this.t("send", "Send"));
      send.type = "submit";
      send.dataset.liveChatSend = "";
      this.sendButton = send;
      this.form.append(this.input, send);
      // Visitors who must log in to chat get a link to the login (and back), not a form.
      this.loginLink = el("a", "button live-chat__login", this.t("login", "Log in to chat"));
      this.loginLink.href = this.root.dataset.loginUrl || "";
      this.loginLink.hidden = true;
      this.loginLink.dataset.liveChatLogin = "";
      // Why this viewer may not post (a mute and its end, a ban): shown as long as it lasts.
      this.restrictionEl = el("p", "live-chat__restriction");
      this.restrictionEl.setAttribute("role", "status");
      this.restrictionEl.hidden = true;
      this.restrictionEl.dataset.liveChatRestriction = "";
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.sendChat();
      });
      this.modBar = el("div", "live-chat__modbar");
      this.modBar.hidden = true;
      chat.replaceChildren(
        this.pinnedEl,
        this.listEl,
        this.noticeEl,
        this.restrictionEl,
        this.form,
        this.loginLink,
        this.modBar,
      );
      if (this.moderationUi) this.buildModBar();
    }
  }

  buildModBar() {
    const label = el("label", "live-chat__slow-label", this.t("slow_mode", "Slow mode"));
    this.slowSelect = el("select", "live-chat__slow");
    this.slowSelect.dataset.liveSlow = "";
    for (const seconds of [0, 5, 10, 30, 60, 120]) {
      const option = el("option", "", seconds ? `${seconds} s` : this.t("off", "Off"));
      option.value = String(seconds);
      this.slowSelect.append(option);
    }
    this.slowSelect.addEventListener("change", () =>
      this.send({ type: "mod.slow", seconds: Number(this.slowSelect.value) }),
    );
    label.append(this.slowSelect);
    this.modBar.append(label);
  }

  setViewers(count, staff) {
    if (!this.viewersEl) return;
    // People in the audience; the host's and moderators' screens are counted apart (staff).
    this.viewersEl.dataset.count = String(count);
    this.viewersEl.dataset.staff = String(staff || 0);
    let text = this.t("viewers", "%(count)s watching").replace("%(count)s", count);
    if (staff && this.can?.moderate) {
      text += " " + this.t("staff", "+%(count)s staff").replace("%(count)s", staff);
    }
    this.viewersEl.textContent = text;
    // The player's stage shows it over the video in the phone view (viewer.js).
    this.root.dispatchEvent(
      new CustomEvent("live:viewers", { detail: { count, staff, text }, bubbles: true }),
    );
  }

  showLiked() {
    const glyph = this.liked ? "♥" : "♡";
    this.likeButton.textContent = glyph;
    this.likeButton.setAttribute("aria-pressed", String(this.liked));
    this.likeButton.classList.toggle("is-liked", this.liked);
    this.likedEl.hidden = !this.liked;
  }

  setLikes(total) {
    if (!this.likesCount) return;
    if (this.lastLikes !== null && total > this.lastLikes) {
      this.floatHearts(Math.min(total - this.lastLikes, MAX_HEARTS));
    }
    this.lastLikes = total;
    this.likesCount.textContent = String(total);
  }

  /** How many of `wanted` new hearts may float now: the cap on floating hearts and the rate. */
  heartsAllowed(wanted) {
    const now = performance.now();
    // A token bucket: HEARTS_PER_SECOND come back each second, at most MAX_HEARTS saved up.
    this.heartTokens = Math.min(
      MAX_HEARTS,
      this.heartTokens + ((now - this.heartTokensAt) / 1000) * HEARTS_PER_SECOND,
    );
    this.heartTokensAt = now;
    const room = MAX_FLOATING_HEARTS - this.hearts.childElementCount;
    const allowed = Math.max(0, Math.min(wanted, room, Math.floor(this.heartTokens)));
    this.heartTokens -= allowed;
    return allowed;
  }

  floatHearts(wanted) {
    if (!this.hearts || window.matchMedia?.("(prefers-reduced-motion: reduce)").matches) return;
    const count = this.heartsAllowed(wanted);
    for (let i = 0; i < count; i += 1) {
      const heart = el("span", "live-heart", "♥");
      heart.style.left = `${10 + Math.random() * 80}%`;
      heart.style.animationDelay = `${i * 90}ms`;
      heart.addEventListener("animationend", () => heart.remove());
      this.hearts.append(heart);
    }
  }

  notice(message) {
    if (!this.noticeEl) return;
    this.noticeEl.textContent = message;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.noticeEl.textContent = "";
    }, 6000);
  }

  renderMessage(message) {
    const item = el("li", "live-chat__message");
    item.dataset.messageId = String(message.id);
    item.dataset.userId = String(message.user_id ?? "");
    item.append(userText("live-chat__name", message.display_name));
    if (message.badge) item.append(this.badge(message.badge));
    item.append(userText("live-chat__text", message.text));
    if (message.time) item.append(this.timeEl(message.time));
    if (this.moderationUi && this.can.moderate) item.append(this.modButtons(message));
    return item;
  }

  badge(kind) {
    // The server's badge names are protocol words; what shows is the translated label.
    const label = this.t(`badge_${kind}`, kind);
    return el("span", `live-chat__badge live-chat__badge--${kind}`, label);
  }

  timeEl(iso) {
    const node = el("time", "live-chat__time");
    node.dateTime = iso;
    node.textContent = relativeTime(iso, Date.now(), this.t("just_now", "now"), this.locale);
    node.title = new Date(iso).toLocaleString(this.locale);
    return node;
  }

  refreshTimes() {
    const justNow = this.t("just_now", "now");
    for (const node of this.root.querySelectorAll(".live-chat__time")) {
      node.textContent = relativeTime(node.dateTime, Date.now(), justNow, this.locale);
    }
  }

  modButtons(message) {
    const tools = el("span", "live-chat__tools");
    const add = (label, action) => {
      const button = el("button", "button button-small button-secondary", label);
      button.type = "button";
      button.addEventListener("click", action);
      tools.append(button);
    };
    add(this.t("remove", "Remove"), () => this.send({ type: "mod.remove", message_id: message.id }));
    add(this.t("pin", "Pin"), () => this.send({ type: "mod.pin", message_id: message.id }));
    if (message.user_id !== null && message.user_id !== this.userId) {
      tools.append(el("span", "live-chat__tools-label", this.t("mute", "Mute:")));
      const mutes = [
        [300, this.t("mute_5m", "5 min")],
        [3600, this.t("mute_1h", "1 h")],
        [86400, this.t("mute_24h", "24 h")],
        [null, this.t("mute_rest", "rest of stream")],
      ];
      for (const [seconds, label] of mutes) {
        add(label, () => this.send({ type: "mod.mute", user_id: message.user_id, seconds }));
      }
      // A ban closes every chat of the site: only site-wide moderators get the button.
      if (this.can.ban) {
        add(this.t("ban", "Ban"), () => {
          this.askBanReason(message);
        });
      }
    }
    return tools;
  }

  /** Ask for the ban's reason in the page's Wagtail dialog (admin/includes/ban_dialog.html), then ban. */
  askBanReason(message) {
    const form = document.querySelector("[data-live-ban-form]");
    const dialog = form?.closest("[data-controller~='w-dialog']");
    if (!dialog) return; // only the admin dashboard, which has the dialog, shows the button
    const reason = form.querySelector("[data-live-ban-reason]");
    form.querySelector("[data-live-ban-name]").textContent = message.display_name;
    reason.value = "";
    form.onsubmit = (event) => {
      event.preventDefault();
      this.send({ type: "mod.ban", user_id: message.user_id, reason: reason.value });
      dialog.dispatchEvent(new CustomEvent("w-dialog:hide"));
    };
    dialog.dispatchEvent(new CustomEvent("w-dialog:show"));
    reason.focus();
  }

  addMessage(message) {
    if (!this.listEl || this.messages.has(message.id)) return;
    const item = this.renderMessage(message);
    this.messages.set(message.id, item);
    const atBottom = this.listEl.scrollHeight - this.listEl.scrollTop - this.listEl.clientHeight < 40;
    this.listEl.append(item);
    this.dropOldestMessages();
    if (atBottom) this.listEl.scrollTop = this.listEl.scrollHeight;
  }

  /** Keep at most MAX_MESSAGES: a Map iterates in insertion order, so the first are the oldest. */
  dropOldestMessages() {
    for (const id of this.messages.keys()) {
      if (this.messages.size <= MAX_MESSAGES) break;
      this.removeMessage(id);
    }
  }

  removeMessage(id) {
    const item = this.messages.get(id);
    if (item) item.remove();
    this.messages.delete(id);
  }

  setPinned(message) {
    if (!this.pinnedEl) return;
    this.pinnedObserver?.disconnect();
    this.pinnedEl.replaceChildren();
    this.pinnedEl.hidden = !message;
    if (!message) return;
    // The message (up to 500 characters) shows 3 lines (live.css) so it cannot push the chat
    // and its input away; a button opens the rest, and is there only when something is cut.
    const body = el("div", "live-chat__pin-body");
    body.id = `live-pinned-${this.root.dataset.session}`;
    body.dataset.livePinnedBody = "";
    body.append(
      el("span", "live-chat__pin-label", this.t("pinned", "Pinned")),
      userText("live-chat__name", message.display_name),
    );
    if (message.badge) body.append(this.badge(message.badge));
    body.append(userText("live-chat__text", message.text));
    const more = el("button", "live-chat__pin-more", this.t("pin_more", "Show all"));
    more.type = "button";
    more.setAttribute("aria-expanded", "false");
    more.setAttribute("aria-controls", body.id);
    more.dataset.livePinnedMore = "";
    more.hidden = true;
    more.addEventListener("click", () => this.expandPinned(more.getAttribute("aria-expanded") !== "true"));
    this.pinnedEl.classList.remove("is-expanded");
    this.pinnedEl.append(body, more);
    this.pinnedMore = more;
    this.pinnedBody = body;
    // Cut or not depends on the box's width (phone overlay, side column, studio): re-read it.
    if (window.ResizeObserver) {
      this.pinnedObserver = new ResizeObserver(() => this.showPinnedMore());
      this.pinnedObserver.observe(body);
    }
    this.showPinnedMore();
    this.pinnedEl.dataset.userId = String(message.user_id ?? "");
    if (this.moderationUi && this.can.moderate) {
      const unpin = el("button", "button button-small button-secondary", this.t("unpin", "Unpin"));
      unpin.type = "button";
      unpin.addEventListener("click", () => this.send({ type: "mod.pin", message_id: null }));
      this.pinnedEl.append(unpin);
    }
  }

  /** Open (or close again) the whole pinned message. */
  expandPinned(expanded) {
    this.pinnedEl.classList.toggle("is-expanded", expanded);
    this.pinnedMore.setAttribute("aria-expanded", String(expanded));
    this.pinnedMore.textContent = expanded ? this.t("pin_less", "Show less") : this.t("pin_more", "Show all");
    this.showPinnedMore();
  }

  /** The "Show all" button only when the 3 lines cut the message (or it is open). */
  showPinnedMore() {
    if (!this.pinnedMore) return;
    const expanded = this.pinnedEl.classList.contains("is-expanded");
    const cut = this.pinnedBody.scrollHeight > this.pinnedBody.clientHeight + 1;
    this.pinnedMore.hidden = !(expanded || cut);
  }

  applyPermissions(can) {
    this.can = can || {};
    // `chat` is false while muted; the mute is kept apart so its end can give the input back.
    this.chatAllowed = Boolean(this.can.chat || this.can.muted_until);
    this.restrict(this.can.muted_until ? { restriction: "muted", until: this.can.muted_until } : null);
    if (this.form) {
      const login = Boolean(this.can.login_required && this.loginLink.getAttribute("href"));
      this.form.hidden = login;
      this.loginLink.hidden = !login;
      if (this.can.login_required) this.input.placeholder = this.t("login", "Log in to chat");
    }
    if (this.likeButton) this.likeButton.disabled = !this.can.like;
    if (this.modBar) this.modBar.hidden = !(this.moderationUi && this.can.moderate);
  }

  // A mute (until an ISO time, or "session_end"), a ban (until null), or null: may chat.
  restrict(restriction) {
    clearTimeout(this.restrictionTimer);
    this.restriction = restriction?.restriction ? restriction : null;
    if (this.restriction?.restriction === "muted" && this.restriction.until !== "session_end") {
      const wait = Date.parse(this.restriction.until) - Date.now();
      if (wait <= 0) this.restriction = null;
      else if (wait < MAX_TIMER_MS) this.restrictionTimer = setTimeout(() => this.restrict(null), wait + 500);
    }
    if (this.restriction?.restriction === "banned") {
      this.chatAllowed = false;
      if (this.likeButton) this.likeButton.disabled = true;
      // Their messages go for everyone; the closing socket may miss the removals, so do it here.
      for (const [id, item] of this.messages) {
        if (this.userId !== null && item.dataset.userId === String(this.userId)) this.removeMessage(id);
      }
      if (this.userId !== null && this.pinnedEl?.dataset.userId === String(this.userId)) this.setPinned(null);
    }
    if (!this.form) return;
    const canPost = this.chatAllowed && !this.restriction;
    this.input.disabled = !canPost;
    this.sendButton.disabled = !canPost;
    if (!this.can.login_required) {
      this.input.placeholder = canPost ? this.t("placeholder", "Say something…") : "";
    }
    this.restrictionEl.hidden = !this.restriction;
    this.restrictionEl.textContent = this.restriction ? this.restrictionText(this.restriction) : "";
  }

  restrictionText({ restriction, until }) {
    if (restriction === "banned") return this.t("banned", "You have been banned from this chat.");
    if (until === "session_end") return this.t("muted_rest", "You are muted until the live ends.");
    const time = new Date(until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return this.t("muted_until", "You are muted until %(time)s.").replace("%(time)s", time);
  }

  // -- the protocol -------------------------------------------------------

  connect() {
    this.socket = new WebSocket(socketUrl(this.path));
    this.root.dataset.connection = "connecting";
    this.socket.addEventListener("open", () => {
      this.root.dataset.connection = "open";
    });
    this.socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      for (const message of Array.isArray(data) ? data : [data]) this.handle(message);
    });
    this.socket.addEventListener("close", (event) => this.closed(event.code));
  }

  closed(code) {
    this.root.dataset.connection = "closed";
    this.root.dataset.closeCode = String(code);
    if (NO_RECONNECT.has(code)) return;
    const base = code === FLOOD_CLOSE ? MAX_BACKOFF_MS : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    // Jitter so thousands of viewers of a restarted worker do not reconnect in one burst.
    setTimeout(() => this.connect(), base * (0.5 + Math.random() / 2));
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  handle(message) {
    switch (message.type) {
      case "state":
        this.attempt = 0;
        rememberVisitor(message.visitor);
        this.userId = message.user?.id ?? null;
        this.applyPermissions(message.can);
        this.messages.clear();
        this.listEl?.replaceChildren();
        for (const chatMessage of message.messages) this.addMessage(chatMessage);
        this.setPinned(message.pinned);
        this.setViewers(message.viewers, message.staff);
        this.lastLikes = null;
        this.setLikes(message.likes);
        if (this.slowSelect) this.slowSelect.value = String(message.slow_mode);
        this.root.dataset.status = message.status;
        this.flushLikes();
        break;
      case "chat.message":
        this.addMessage(message);
        break;
      case "chat.removed":
        this.removeMessage(message.id);
        break;
      case "chat.pinned":
        this.setPinned(message.message);
        break;
      case "chat.restricted":
        this.restrict(message);
        break;
      case "chat.slow":
        if (this.slowSelect) this.slowSelect.value = String(message.seconds);
        break;
      case "likes":
        this.setLikes(message.total);
        break;
      case "viewers":
        this.setViewers(message.count, message.staff);
        break;
      case "status":
        this.root.dataset.status = message.state;
        this.root.dispatchEvent(new CustomEvent("live:status", { detail: message, bubbles: true }));
        break;
      case "health": // stream health, sent to the host and moderators only (stream-health.js)
        this.root.dispatchEvent(new CustomEvent("live:health", { detail: message, bubbles: true }));
        break;
      case "error":
        if (message.code === "muted") this.restrict({ restriction: "muted", until: message.until });
        else if (message.code === "banned") this.restrict({ restriction: "banned", until: null });
        else this.notice(message.message);
        break;
      default:
        break; // newer servers may send more types; ignore them
    }
  }

  sendChat() {
    const text = this.input.value.trim();
    if (!text) return;
    this.send({ type: "chat.send", text });
    this.input.value = "";
  }

  tapLike() {
    if (!this.liked) {
      this.liked = true;
      storeLiked(this.root.dataset.session);
      this.showLiked();
    }
    this.pendingLikes += 1;
    this.floatHearts(1);
    this.lastLikes = (this.lastLikes ?? 0) + 1;
    this.likesCount.textContent = String(this.lastLikes);
    // Taps are summed and sent a few times a second, not one frame per tap.
    if (!this.likeTimer) this.likeTimer = setTimeout(() => this.flushLikes(), LIKE_FLUSH_MS);
  }

  flushLikes() {
    this.likeTimer = null;
    if (!this.pendingLikes) return;
    // Taps made while reconnecting are kept and sent once the socket is back.
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    this.send({ type: "like", count: this.pendingLikes });
    this.pendingLikes = 0;
  }
}

export function initLiveRealtime(scope = document) {
  for (const root of scope.querySelectorAll("[data-live-realtime]")) {
    if (!root.liveRealtime) root.liveRealtime = new LiveRealtime(root);
  }
}

initLiveRealtime();
