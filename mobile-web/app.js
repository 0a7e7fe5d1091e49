/* The pensioner's proof-of-life page: form -> preparation -> camera -> server-paced steps -> result.
   Plain ES2020, no build step, no external resources. Talks only to the public API
   (/api/v1, see notes/api_contract.md and mobile-web/README.md). */
(function () {
  "use strict";

  const API = "api/v1";
  // Assisted mode (帮助他人认证, ?assist=1): a community worker signed in to the console runs the same
  // capture for the pensioner in front of the camera; the session is started through the staff API
  // with the worker's console session (cookie + CSRF token) and the worker's location text.
  const ASSIST = new URLSearchParams(window.location.search).get("assist") === "1";
  const STAFF_API = "api/staff";
  const JPEG_QUALITY = 0.85;
  const CAPTURE_LONG_SIDE = 640; // px; frames are downscaled so that the long side is at most this
  const CAMERA_TIMEOUT_MS = 15000;
  const CHUNK_TIMEOUT_MS = 30000; // one chunk request; a slow network ends the attempt, never hangs it
  const MAX_PENDING_MS = 7500; // capture time waiting for upload; beyond this the capture pauses (slow network)
  const STALL_GRACE_MS = 20000; // a step the server has not closed this long after its limit ends the attempt
  const STALE_FRAME_MS = 300; // at a step change, queued frames older than this are dropped
  const HINT_REPEAT_MS = 6000; // the same hint is said again no sooner than this after its speech ENDED
  const PROMPT_QUIET_MS = 2500; // no hint is spoken this soon after a prompt
  // An action hint not heard to its end this long after it was shown, or after it was handed to the voice if that
  // came later (it waits for the prompt's speech), counts as heard when shown (no speech came: a voice still busy,
  // a speech engine that never says "end"); a prompt not heard to its end this long after it was shown is not
  // reported at all.
  // espeak-ng's Mandarin says the longest hint in 6.3 s (6.7 s with its trailing silence) at our rate
  // (lifecert/services/verification/steps.py); the voice may be busy ~2-3 s before it with the prompt (6.1 s for a
  // turn: benchmarks hint_heard, where the hint is heard up to 9.3 s after it was shown, 6.3 s after it was said).
  const HINT_HEARD_WAIT_MS = 10000;
  // the server's action hints (steps.ACTION_HINT_CODES): the step's window runs on from when one was heard
  const ACTION_HINTS = new Set(["TURN_MORE", "LOOK_BACK", "DO_ACTION", "BLINK_FIRMLY", "OPEN_WIDER", "NOD_MORE", "LOOK_UP"]);

  // ---------------------------------------------------------------------------------------------
  // GB 11643-1999 check digit (same algorithm as lifecert/domain/idnumber.py)
  const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const CHECK_CHARS = "10X98765432";

  function normalizeIdNumber(raw) {
    return String(raw || "")
      .replace(/[\uFF10-\uFF19]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xff10 + 48))
      .replace(/[\uFF38\uFF58]/g, "X")
      .replace(/\s+/g, "")
      .toUpperCase();
  }

  function checkChar(first17) {
    let total = 0;
    for (let i = 0; i < 17; i += 1) total += Number(first17[i]) * WEIGHTS[i];
    return CHECK_CHARS[total % 11];
  }

  /** {ok: true, value} or {ok: false, reason: "empty"|"length"|"date"|"check"}. */
  function validateIdNumber(raw, today) {
    const s = normalizeIdNumber(raw);
    if (!s) return { ok: false, reason: "empty" };
    if (!/^\d{17}[\dX]$/.test(s)) return { ok: false, reason: "length" };
    const y = Number(s.slice(6, 10));
    const m = Number(s.slice(10, 12));
    const d = Number(s.slice(12, 14));
    const born = new Date(Date.UTC(y, m - 1, d));
    const now = today || new Date();
    const valid = born.getUTCFullYear() === y && born.getUTCMonth() === m - 1 && born.getUTCDate() === d;
    if (!valid || y < 1880 || born.getTime() > Date.UTC(now.getFullYear(), now.getMonth(), now.getDate())) {
      return { ok: false, reason: "date" };
    }
    if (checkChar(s.slice(0, 17)) !== s[17]) return { ok: false, reason: "check" };
    return { ok: true, value: s };
  }

  // ---------------------------------------------------------------------------------------------
  // Small DOM helpers and language
  const $ = (id) => document.getElementById(id);
  const I18N = window.LIFECERT_I18N || { zh: {}, en: {} };
  const SCREENS = ["form", "prepare", "denied", "capture", "result"];

  const state = {
    lang: "zh",
    busy: false,
    idNumber: "",
    name: "",
    phase: null, // {kind: "starting"|"countdown"|"settle"|"wait"|"challenge"|"done", n, challenge, index, total}
    result: null, // last result object from the API
    error: null, // {code, retryAfterS, at} of the last error
    stream: null,
    timers: [],
    run: 0, // bumped for every attempt; a stale attempt stops at its next await
    hintSpoken: "", // the code last spoken (a hint shown while the voice was busy is spoken later)
    // its last utterance: {at: performance.now() when the voice took it, ended: null | when its end / error came}
    hintVoice: null,
    lastPromptSpoken: 0,
    // what the voice is saying now, as speak() was told ({kind: "prompt" | "action" | "framing" | "other", code}); null
    // once that utterance ended, failed or was cancelled (it is the one to clear it: see speak)
    saying: null,
  };

  function t(key, vars) {
    const table = I18N[state.lang] || I18N.zh;
    let s = table[key] !== undefined ? table[key] : I18N.zh[key] !== undefined ? I18N.zh[key] : key;
    if (vars) for (const k of Object.keys(vars)) s = s.replace(`{${k}}`, String(vars[k]));
    return s;
  }

  function loadLang() {
    try {
      const saved = window.localStorage.getItem("lifecert.lang");
      if (saved === "en" || saved === "zh") return saved;
    } catch (_) {
      /* storage may be disabled */
    }
    return "zh";
  }

  function applyLang() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    $("app").dataset.lang = state.lang;
    document.title = t("app.title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    $("lang-toggle").lang = state.lang === "zh" ? "en" : "zh-CN";
    renderPhase();
    renderHint();
    renderOutcome();
  }

  function showScreen(name) {
    for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
    $("app").dataset.screen = name;
    window.scrollTo(0, 0);
  }

  /** Speak ``text`` (Mandarin voice unless switched). ``polite``: never interrupt what is being said; then
   *  false when something else is being said (the caller may try again later). Else whatever is being said is
   *  cancelled first. ``onDone`` (optional) is called once it is known whether the text was heard: true at the
   *  utterance's end; false when nothing will be said (no speech synthesis, an error, a cancel); possibly never (a
   *  browser that fires neither event). Not called when ``false`` is returned. ``what`` (optional,
   *  {kind, code}): what this is, kept in ``state.saying`` while it is being said (see :func:`setHints`). */
  function speak(text, polite, onDone, what) {
    let pending = onDone || null;
    const done = (heard) => {
      const f = pending;
      pending = null;
      if (f) f(heard);
    };
    if (!("speechSynthesis" in window) || typeof window.SpeechSynthesisUtterance !== "function") {
      done(false);
      return true;
    }
    try {
      const synth = window.speechSynthesis;
      if (polite && (synth.speaking || synth.pending)) return false;
      synth.cancel();
      const u = new window.SpeechSynthesisUtterance(text);
      u.lang = state.lang === "zh" ? "zh-CN" : "en-US";
      u.rate = 0.85; // a little slower than default: the listeners are elderly
      const voice = synth.getVoices().find((v) => v.lang && v.lang.replace("_", "-").startsWith(u.lang.slice(0, 2)));
      if (voice) u.voice = voice;
      // An empty voice list is no sign that nothing will be said: Android Chrome lists its voices only at a
      // later "voiceschanged" and meanwhile speaks with its default one. The utterance's own end / error tells;
      // a browser that says neither is bounded by the caller (HINT_HEARD_WAIT_MS).
      // Only this utterance's own events end it (each has its own ``done`` and ``saying``): Chrome fires the
      // cancelled one's "error" ("interrupted") after cancel() returned, possibly once the next one has begun.
      const saying = what || { kind: "other", code: "" };
      const over = () => {
        if (state.saying === saying) state.saying = null;
      };
      u.addEventListener("end", () => {
        over();
        done(true);
      });
      u.addEventListener("error", () => {
        over();
        done(false);
      });
      synth.speak(u);
      state.saying = saying;
    } catch (_) {
      done(false); /* speaking is a help, never a requirement */
    }
    return true;
  }

  const sleep = (ms) => new Promise((resolve) => {
    state.timers.push(setTimeout(resolve, ms));
  });

  function clearTimers() {
    for (const id of state.timers) clearTimeout(id);
    state.timers = [];
  }

  // ---------------------------------------------------------------------------------------------
  // Icons (inline SVG, no external files)
  const svg = (body) => `<svg viewBox="0 0 64 64" width="64" height="64" fill="none" stroke="currentColor" stroke-width="4" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;
  const ICONS = {
    settle: svg('<circle cx="32" cy="32" r="22"/><circle cx="24" cy="28" r="3" fill="currentColor"/><circle cx="40" cy="28" r="3" fill="currentColor"/><path d="M24 41h16"/>'),
    blink: svg('<path d="M6 32c8-12 44-12 52 0"/><path d="M6 32c8 10 44 10 52 0" stroke-dasharray="4 6"/><path d="M16 40l-4 6M32 43v7M48 40l4 6"/>'),
    // Mirrored preview: "your left" is the screen's left, so the arrow points left.
    turn_left: svg('<circle cx="38" cy="32" r="18"/><path d="M30 30l-6 2 6 2"/><path d="M22 12H6m0 0l6-6M6 12l6 6"/>'),
    turn_right: svg('<circle cx="26" cy="32" r="18"/><path d="M34 30l6 2-6 2"/><path d="M42 12h16m0 0l-6-6m6 6l-6 6"/>'),
    open_mouth: svg('<circle cx="32" cy="32" r="24"/><circle cx="23" cy="24" r="3" fill="currentColor"/><circle cx="41" cy="24" r="3" fill="currentColor"/><ellipse cx="32" cy="43" rx="8" ry="10"/>'),
    nod: svg('<circle cx="32" cy="34" r="16"/><path d="M54 8v48m0-48l-6 6m6-6l6 6M54 56l-6-6m6 6l6-6"/>'),
    wait: svg('<path d="M14 34l12 12 24-26"/>'),
    done: svg('<path d="M14 34l12 12 24-26"/>'),
    CONFIRMED: svg('<circle cx="32" cy="32" r="26"/><path d="M20 33l9 9 16-18"/>'),
    RETRY: svg('<path d="M50 32a18 18 0 1 1-6-13.4"/><path d="M46 8v12H34"/>'),
    REVIEW: svg('<circle cx="32" cy="22" r="10"/><path d="M12 56c2-12 10-18 20-18s18 6 20 18"/>'),
    ERROR: svg('<circle cx="32" cy="32" r="26"/><path d="M32 18v18"/><circle cx="32" cy="45" r="2" fill="currentColor"/>'),
  };

  // ---------------------------------------------------------------------------------------------
  // API
  class ApiError extends Error {
    constructor(code, status, message, details, retryAfterS) {
      super(message || code);
      this.code = code;
      this.status = status || 0;
      this.details = details || {};
      this.retryAfterS = retryAfterS || null;
    }
  }

  function errorFromResponse(status, text, retryAfterHeader) {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = null;
    }
    const err = body && body.error;
    const fromDetails = err && err.details && Number(err.details.retry_after);
    const fromHeader = Number(retryAfterHeader);
    const retryAfterS = fromDetails > 0 ? fromDetails : fromHeader > 0 ? fromHeader : null;
    if (err && typeof err.code === "string") return new ApiError(err.code, status, err.message, err.details, retryAfterS);
    // No JSON error body (e.g. a proxy answered): fall back on the HTTP status.
    const byStatus = { 404: "NOT_FOUND", 410: "SESSION_EXPIRED", 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED" };
    return new ApiError(byStatus[status] || (status >= 500 ? "SERVER" : "UNKNOWN"), status, null, null, retryAfterS);
  }

  async function postJson(url, body, extraHeaders) {
    let res;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, extraHeaders || {}),
        body: JSON.stringify(body),
        cache: "no-store",
      });
    } catch (_) {
      throw new ApiError("NETWORK");
    }
    const text = await res.text();
    if (res.status !== 201 && res.status !== 200) throw errorFromResponse(res.status, text, res.headers.get("Retry-After"));
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new ApiError("SERVER", res.status);
    }
  }

  function createSession(idNumber, name) {
    if (ASSIST) {
      const body = { id_number: idNumber, name, location: state.location, device: navigator.userAgent.slice(0, 128) };
      return postJson(`${STAFF_API}/assisted/sessions`, body, { "X-CSRF-Token": state.assistCsrf || "" });
    }
    return postJson(`${API}/sessions`, { id_number: idNumber, name, protocol: "paced" });
  }

  /** Assisted mode: the worker's console session must be open; its CSRF token signs the start request. */
  async function initAssist() {
    // The worker reads the top of the form first: say at once that this is for someone else.
    $("form-lead").dataset.i18n = "assist.banner";
    $("form-intro").dataset.i18n = "assist.intro";
    applyLang();
    $("assist-field").hidden = false;
    try {
      const res = await fetch(`${STAFF_API}/assisted/context`, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (res.status !== 200) throw new Error(String(res.status));
      const ctx = await res.json();
      state.assistCsrf = ctx.csrf_token;
    } catch (_) {
      fieldError("location", "location-error", t("assist.login"));
      $("start").disabled = true;
    }
  }

  /** One chunk of frames for step ``index`` (multipart: nonce, timestamps JSON, frames, prompt_shown_ms,
      sent_ms = the capture clock when the request leaves, so the server can tell queueing from upload;
      ``heard`` = {ms, via} once this step's action hint was heard: hint_heard_ms on the same clock and
      hint_heard_via "speech" | "text" and hint_heard_code (which action hint: the newest heard), sent with every
      later chunk of the step, the server keeps the newest;
      ``promptHeard`` the same for the step's prompt: prompt_heard_ms / prompt_heard_via). */
  async function postChunk(sessionId, step, frames, promptShownMs, sentMs, heard, promptHeard) {
    const form = new FormData();
    form.append("nonce", step.nonce);
    form.append("timestamps", JSON.stringify(frames.map((f) => f.t)));
    if (promptShownMs !== null) form.append("prompt_shown_ms", String(promptShownMs));
    const sent = Math.max(sentMs, frames[frames.length - 1].t);
    form.append("sent_ms", String(sent));
    if (heard && heard.ms !== null) {
      form.append("hint_heard_ms", String(Math.max(0, Math.min(heard.ms, sent))));
      form.append("hint_heard_via", heard.via);
      form.append("hint_heard_code", heard.code);
    }
    if (promptHeard && promptHeard.ms !== null) {
      form.append("prompt_heard_ms", String(Math.max(0, Math.min(promptHeard.ms, sent))));
      form.append("prompt_heard_via", promptHeard.via);
    }
    frames.forEach((f, i) => form.append("frames", f.blob, `f_${String(f.t).padStart(6, "0")}_${i}.jpg`));
    const url = `${API}/sessions/${encodeURIComponent(sessionId)}/steps/${step.index}/frames`;
    let res;
    try {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), CHUNK_TIMEOUT_MS);
      try {
        res = await fetch(url, { method: "POST", body: form, headers: { Accept: "application/json" }, cache: "no-store", signal: ctrl.signal });
      } finally {
        clearTimeout(timer);
      }
    } catch (_) {
      throw new ApiError("NETWORK");
    }
    const text = await res.text();
    if (res.status !== 200) throw errorFromResponse(res.status, text, res.headers.get("Retry-After"));
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new ApiError("SERVER", res.status);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Camera
  async function openCamera(video) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new ApiError("CAMERA_UNAVAILABLE");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (err) {
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError" || err.name === "PermissionDeniedError");
      throw new ApiError(denied ? "CAMERA_DENIED" : "CAMERA_UNAVAILABLE");
    }
    state.stream = stream;
    video.srcObject = stream;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ApiError("CAMERA_UNAVAILABLE")), CAMERA_TIMEOUT_MS);
      const ready = () => {
        if (video.readyState >= 2 && video.videoWidth > 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      video.addEventListener("loadeddata", ready, { once: true });
      video.addEventListener("playing", ready, { once: true });
      video.play().then(ready, () => undefined);
      ready();
    });
  }

  function stopCamera() {
    if (state.stream) for (const track of state.stream.getTracks()) track.stop();
    state.stream = null;
    const video = $("preview");
    if (video) video.srcObject = null;
  }

  // ---------------------------------------------------------------------------------------------
  // What the capture screen says: the step the server revealed, and its hints.
  function renderPhase() {
    const p = state.phase;
    if (!p) return "";
    const box = $("challenge");
    let key;
    let sub = "";
    let icon = "";
    if (p.kind === "starting") key = "capture.starting";
    else if (p.kind === "countdown") {
      key = "capture.countdown";
      icon = ICONS.settle;
    } else if (p.kind === "settle") {
      key = "capture.settle";
      sub = t("capture.settle_sub");
      icon = ICONS.settle;
    } else if (p.kind === "wait") {
      key = "capture.wait";
      icon = ICONS.wait;
    } else if (p.kind === "challenge") {
      key = `challenge.${p.challenge}`;
      icon = ICONS[p.challenge] || "";
      if (p.total) sub = t("challenge.step", { n: p.index, total: p.total });
    } else {
      key = "capture.done";
      icon = ICONS.done;
    }
    box.dataset.challenge = p.kind === "challenge" ? p.challenge : p.kind;
    box.dataset.step = p.step === undefined ? "" : String(p.step);
    $("challenge-icon").innerHTML = icon;
    $("challenge-text").textContent = t(key);
    $("challenge-step").textContent = sub;
    return t(key);
  }

  /** ``say``: speak the phase's text; ``onDone`` (optional) as :func:`speak`'s. */
  function setPhase(phase, say, onDone) {
    state.phase = phase;
    const text = renderPhase();
    if (say) {
      state.lastPromptSpoken = performance.now();
      speak(text, false, onDone, { kind: "prompt", code: "" });
    }
  }

  // A face not seen well first (it cannot act), then the action hints of a step not yet passed, then the
  // rest (a face too close can still act: lifecert/services/verification/steps.step_hints).
  const HINT_PRIORITY = [
    "NO_FACE", "ONE_PERSON_ONLY", "MORE_LIGHT", "LESS_LIGHT", "MOVE_CLOSER", "FACE_NOT_CENTRED",
    "LOOK_BACK", "LOOK_UP", "TURN_MORE", "DO_ACTION", "BLINK_FIRMLY", "OPEN_WIDER", "NOD_MORE",
    "MOVE_BACK", "HOLD_STILL",
  ];

  /** The text of hint ``code``; "{prompt}" is the prompt on screen (DO_ACTION says it again; "" without one). */
  function hintText(code) {
    const p = state.phase;
    const prompt = p && p.kind === "challenge" && p.challenge ? t(`challenge.${p.challenge}`) : "";
    const text = t(`hint.${code}`, { prompt });
    return text.trim() ? text : "";
  }

  function renderHint() {
    const el = $("hint");
    const code = el.dataset.hint || "";
    el.textContent = code ? hintText(code) : "";
  }

  /** From when HINT_REPEAT_MS counts for the hint last said (performance.now() ms): the END of its speech (its own
   *  end or error event), so that a hint that takes longer to say than HINT_REPEAT_MS (espeak-ng: TURN_MORE 6.3 s)
   *  is not said again right after it ended. While it is being said: Infinity (not again). Where nothing was said
   *  (no speech synthesis) or no event came within HINT_HEARD_WAIT_MS of handing it over (a browser that fires
   *  neither): from when it was handed over, as the hearing report does; an event coming later still counts. */
  function hintRepeatFrom(now) {
    const v = state.hintVoice;
    if (v === null) return -Infinity;
    if (v.ended !== null) return v.ended;
    return now - v.at > HINT_HEARD_WAIT_MS ? v.at : Infinity;
  }

  /** Show the most important of the server's hint codes; speak it when it changes (never over a prompt).
   *  ``hearing`` (the paced capture's, optional): told when an action hint appears on screen and when the voice
   *  takes one; gives the callback that notes when it was heard (:func:`capturePaced`). */
  function setHints(codes, hearing) {
    const known = (Array.isArray(codes) ? codes : []).filter((c) => I18N.zh[`hint.${c}`] !== undefined);
    known.sort((a, b) => HINT_PRIORITY.indexOf(a) - HINT_PRIORITY.indexOf(b));
    const code = known[0] || "";
    const el = $("hint");
    const fresh = code !== (el.dataset.hint || "");
    el.dataset.hint = code;
    renderHint();
    if (!code) state.hintSpoken = "";
    const now = performance.now();
    const text = code ? hintText(code) : "";
    // A new hint is spoken at the first answer that finds the voice free (one arriving while the previous
    // hint is still being said is not lost: it is tried again at the next answer, about a second later).
    const due = code !== state.hintSpoken || now - hintRepeatFrom(now) > HINT_REPEAT_MS;
    const action = hearing && ACTION_HINTS.has(code);
    if (action && fresh) hearing.shown(code);
    // An action hint does not wait behind a framing hint: in a challenge step, one due while the voice is saying a
    // framing hint (MOVE_BACK, NO_FACE, ... said once the prompt's speech ended) cancels it and is said now. The
    // screen is not changed by this: it shows the answer's most important hint, as always. A slow voice takes
    // 2.3-6.6 s to say a framing hint (espeak-ng), and the slow listener's step has no room for that wait (steps.py:
    // HINT_MAX_WINDOW_MS). Never over the prompt, never over another action hint; PROMPT_QUIET_MS and HINT_REPEAT_MS
    // hold as for any hint, and one hint is said at a time (speak cancels the framing hint first).
    const s = state.saying;
    const preempt = ACTION_HINTS.has(code) && state.phase && state.phase.kind === "challenge" && s !== null
      && s.kind === "framing" && "speechSynthesis" in window && (window.speechSynthesis.speaking
        || window.speechSynthesis.pending);
    const what = { kind: ACTION_HINTS.has(code) ? "action" : "framing", code };
    // this utterance's own end / error (never another's: each has its own record) starts HINT_REPEAT_MS; only an
    // action hint's tells the hearing (a cancelled framing hint is never an action hint heard). The hearing's
    // callback is known only once the voice has taken the text; speak may report "nothing will be said" before it
    // returns (no speech synthesis): that outcome waits in ``early``.
    const voiced = { at: now, ended: null };
    let onEnd = null;
    let early;
    const over = (ok) => {
      if (voiced.ended === null) voiced.ended = performance.now();
      if (!action) return;
      if (onEnd) onEnd(ok);
      else early = ok;
    };
    if (text && due && now - state.lastPromptSpoken > PROMPT_QUIET_MS && speak(text, !preempt, over, what)) {
      state.hintVoice = voiced;
      state.hintSpoken = code;
      if (action) {
        onEnd = hearing.said(code);
        if (early !== undefined) onEnd(early);
      }
    }
  }

  async function countdown(run) {
    const el = $("countdown");
    setPhase({ kind: "countdown" });
    el.hidden = false;
    for (const n of [3, 2, 1]) {
      if (run !== state.run) return;
      el.textContent = String(n);
      el.dataset.n = String(n);
      speak(String(n));
      await sleep(1000);
    }
    el.hidden = true;
    el.textContent = "";
  }

  // ---------------------------------------------------------------------------------------------
  // Paced capture: frames at the step's fps (else the session's), uploaded in chunks to the step the
  // server revealed.
  // The server decides each step (seen / timed out) and reveals the next one with a fresh nonce;
  // the page never knows the sequence in advance.
  function clampNum(v, lo, hi, dflt) {
    const n = Number(v);
    return Number.isFinite(n) && n > 0 ? Math.min(hi, Math.max(lo, n)) : dflt;
  }

  async function capturePaced(session, video, run) {
    const sessionFps = clampNum(session.fps, 1, 15, 8);
    const chunkMs = clampNum(session.chunk_ms, 200, 5000, 1000);
    const sessionChunkMax = Math.round(clampNum(session.chunk_max_frames, 1, 30, 12));
    // A brief action (a blink) may be captured faster than the session's rate: the step says so.
    const fps = () => clampNum(step && step.fps, 1, 15, sessionFps);
    const chunkMax = () => Math.round(clampNum(step && step.chunk_max_frames, 1, 30, sessionChunkMax));
    // steps_total counts the settle step (index 0); the pensioner hears "step n of <challenges>".
    const total = Math.max(0, Math.round(Number(session.steps_total) || 0) - 1);

    const canvas = $("capture-canvas");
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    const scale = Math.min(1, CAPTURE_LONG_SIDE / Math.max(vw, vh));
    canvas.width = Math.round(vw * scale);
    canvas.height = Math.round(vh * scale);
    const ctx = canvas.getContext("2d");
    const bar = $("timeline-bar");
    const sentEl = $("sent");

    const t0 = performance.now();
    const pending = []; // {t, blob: Promise<Blob|null>} captured but not yet sent
    let lastT = -1;
    let step = null;
    let stepReceived = 0; // performance.now() when the current step arrived
    let promptShownMs = null; // capture-clock ms when the current challenge's prompt appeared
    let sent = 0;
    let stopped = false;
    // When the pensioner heard the current step's action hints (each utterance's end, else when it was shown): the
    // page reports the newest one heard, with its code, and the server keeps the step open for a while after it
    // (steps.newer_hearing, steps.hint_window). One record per hint shown anew or said again.
    let heard = []; // {step, code, ms: null | capture-clock ms, via: "speech" | "text", shownMs, ...}
    const speech = () => "speechSynthesis" in window && typeof window.SpeechSynthesisUtterance === "function";
    const record = (code) => {
      const h = { step: step.index, code, ms: null, via: "", shownMs: Math.round(performance.now() - t0) };
      const asShown = () => {
        if (h.ms !== null) return;
        h.ms = h.shownMs;
        h.via = "text";
      };
      h.onDone = (ok) => {
        if (h.ms !== null) return;
        if (!ok) return asShown();
        h.ms = Math.round(performance.now() - t0);
        h.via = "speech";
      };
      h.wait = (ms) => { // counts as heard when shown unless its speech has ended within ``ms`` from now
        clearTimeout(h.timer);
        h.timer = setTimeout(asShown, ms);
        state.timers.push(h.timer);
      };
      heard = heard.filter((x) => x.step === step.index).concat([h]);
      if (!speech()) asShown();
      else h.wait(HINT_HEARD_WAIT_MS);
      return h;
    };
    const pendingFor = (code) => heard.find((h) => step && h.step === step.index && h.code === code && h.ms === null);
    const hearing = {
      /** Action hint ``code`` appeared on screen (it was not there at the previous answer). */
      shown(code) {
        if (!step || step.kind !== "challenge" || pendingFor(code)) return;
        record(code);
      },
      /** The voice has taken ``code``'s text (it may have waited for the prompt's speech, or it is said again):
       *  its bound counts from now; gives the callback for the utterance's end. */
      said(code) {
        if (!step || step.kind !== "challenge") return () => {};
        const h = pendingFor(code) || record(code);
        h.said = true;
        if (h.ms === null) h.wait(HINT_HEARD_WAIT_MS);
        return h.onDone;
      },
      /** Stale hints were dropped: the records of hints shown but never said, not yet heard, go with them. */
      forgetUnsaid() {
        for (const h of heard) if (h.ms === null && !h.said) clearTimeout(h.timer);
        heard = heard.filter((h) => h.ms !== null || h.said);
      },
    };
    // the newest hearing known in this step (the server keeps the newest of a code it gave, never an earlier one)
    const heardNow = () => heard.filter((h) => step && h.step === step.index && h.ms !== null)
      .reduce((a, h) => (a === null || h.ms > a.ms ? h : a), null);
    // When the current challenge step's PROMPT was heard said to its end (a slow voice takes ~6 s to say a turn
    // prompt, and the hint waits for it): the server counts the step's window from then (steps.prompt_window).
    // Only a speech's end within HINT_HEARD_WAIT_MS is reported: when the prompt was shown the server already
    // knows (prompt_shown_ms).
    let promptHeard = null; // {step, ms: null | capture-clock ms, via: "speech"}
    const promptHeardNow = () => (promptHeard && step && promptHeard.step === step.index && promptHeard.ms !== null
      ? promptHeard : null);
    const sayPrompt = (index) => {
      const p = { step: index, ms: null, via: "speech", open: true };
      promptHeard = p;
      state.timers.push(setTimeout(() => { p.open = false; }, HINT_HEARD_WAIT_MS));
      return (ok) => {
        if (ok && p.open && p.ms === null) p.ms = Math.round(performance.now() - t0);
        p.open = false;
      };
    };

    const enterStep = (next) => {
      if (step) {
        // Frames still queued from the step the server has just closed are of no use to the new one (it
        // counts from its own reveal): drop them so that a slow network never leaves the upload behind.
        const cutoff = Math.round(performance.now() - t0) - STALE_FRAME_MS;
        while (pending.length && pending[0].t < cutoff) pending.shift();
      }
      step = next;
      stepReceived = performance.now();
      promptShownMs = null;
      bar.style.width = "0%";
      setHints([]); // the last step's hints no longer apply
      if (step.kind !== "challenge" || !step.challenge) {
        setPhase({ kind: "settle", step: step.index }, true);
        promptShownMs = 0;
        return;
      }
      // A short "well done" pause, then the prompt after the server's random delay.
      setPhase({ kind: "wait", step: step.index });
      const shownFor = step.index;
      const delay = clampNum(step.prompt_delay_ms, 0, 5000, 0);
      state.timers.push(setTimeout(() => {
        if (run !== state.run || stopped || !step || step.index !== shownFor) return;
        promptShownMs = Math.round(performance.now() - t0);
        setPhase({ kind: "challenge", challenge: step.challenge, index: step.index, total, step: step.index }, true,
          sayPrompt(step.index));
      }, delay));
    };

    const grab = () => {
      if (stopped || run !== state.run) return;
      if (pending.length < Math.ceil((MAX_PENDING_MS * fps()) / 1000)) {
        // The preview is mirrored with CSS only; the canvas gets the frame as the camera delivers it.
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        const tms = Math.max(lastT, Math.round(performance.now() - t0));
        lastT = tms;
        pending.push({ t: tms, blob: new Promise((res) => canvas.toBlob(res, "image/jpeg", JPEG_QUALITY)) });
      }
      if (step && promptShownMs !== null && step.kind === "challenge") {
        const windowMs = clampNum(step.window_ms, 1000, 60000, 8000);
        const frac = (performance.now() - t0 - promptShownMs) / windowMs;
        bar.style.width = `${Math.min(100, 100 * frac).toFixed(1)}%`;
      }
      state.timers.push(setTimeout(grab, 1000 / fps()));
    };

    enterStep(session.step);
    grab();
    try {
      let lastSend = performance.now();
      for (;;) {
        if (run !== state.run) throw new ApiError("CANCELLED");
        const windowMs = clampNum(step.window_ms, 1000, 60000, 8000);
        const delay = clampNum(step.prompt_delay_ms, 0, 5000, 0);
        if (performance.now() - stepReceived > delay + windowMs + STALL_GRACE_MS) throw new ApiError("STALLED");
        const wait = lastSend + chunkMs - performance.now();
        if (wait > 0 || pending.length === 0) {
          await sleep(Math.max(50, wait));
          continue;
        }
        lastSend = performance.now();
        const batch = pending.splice(0, chunkMax());
        const blobs = await Promise.all(batch.map((f) => f.blob));
        const frames = [];
        batch.forEach((f, i) => {
          if (blobs[i]) frames.push({ t: f.t, blob: blobs[i] });
        });
        if (!frames.length) continue;
        let resp;
        const clock = () => Math.round(performance.now() - t0);
        const told = promptHeardNow();
        try {
          resp = await postChunk(session.session_id, step, frames, promptShownMs, clock(), heardNow(), told);
        } catch (err) {
          // A lost connection may not have reached the server: the same nonce is tried once more.
          if (!(err instanceof ApiError) || err.code !== "NETWORK") throw err;
          await sleep(1000);
          resp = await postChunk(session.session_id, step, frames, promptShownMs, clock(), heardNow(), told);
        }
        if (run !== state.run) throw new ApiError("CANCELLED");
        sent += frames.length;
        sentEl.dataset.frames = String(sent);
        sentEl.textContent = t("capture.sent", { n: sent });
        // An action hint in the answer to a chunk that left before the prompt was heard, now that it has been, is
        // stale: told of the hearing (with the next chunk) the server counts its hint time from it (steps: the slow
        // listener), and DO_ACTION said now would say the whole prompt again. Not shown, not said; a hint shown
        // while the prompt was still being said and never said is forgotten with it.
        const staleAction = !told && promptHeardNow() !== null;
        if (staleAction) hearing.forgetUnsaid();
        setHints(staleAction ? (resp.hints || []).filter((c) => !ACTION_HINTS.has(c)) : resp.hints, hearing);
        if (resp.status === "decided" || resp.result) {
          if (!resp.result) throw new ApiError("SERVER");
          return resp.result;
        }
        if (!resp.step || typeof resp.step.nonce !== "string") throw new ApiError("SERVER");
        if (resp.step.index !== step.index) enterStep(resp.step);
        // the same step: a new nonce, and its limit as the server now keeps it (it grows after an action hint)
        else step = Object.assign({}, step, { nonce: resp.step.nonce, window_ms: resp.step.window_ms });
      }
    } finally {
      stopped = true;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Result and error screens
  function formatDate(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    if (!m) return iso || "";
    return state.lang === "zh" ? `${m[1]}年${Number(m[2])}月${Number(m[3])}日` : `${m[1]}-${m[2]}-${m[3]}`;
  }

  const pad2 = (n) => String(n).padStart(2, "0");

  /** "今天 14:35" / "明天 00:10" / "2026年12月2日 09:00" in the phone's local time. */
  function formatUntil(when, now) {
    const time = `${pad2(when.getHours())}:${pad2(when.getMinutes())}`;
    const dayMs = 24 * 3600 * 1000;
    const day = (d) => Math.floor((d.getTime() - d.getTimezoneOffset() * 60000) / dayMs);
    const diff = day(when) - day(now);
    if (diff === 0) return t("when.today", { time });
    if (diff === 1) return t("when.tomorrow", { time });
    const date = formatDate(`${when.getFullYear()}-${pad2(when.getMonth() + 1)}-${pad2(when.getDate())}`);
    return t("when.date", { date, time });
  }

  function renderOutcome() {
    const box = $("result");
    const r = state.result;
    const e = state.error;
    if (!r && !e) return "";
    const valid = $("result-valid");
    const retry = $("retry");
    valid.hidden = true;
    let title;
    let detail = "";
    let next = "";
    box.dataset.missed = "";
    box.dataset.until = "";
    if (r) {
      const decision = r.decision;
      box.dataset.decision = decision || "";
      box.dataset.error = "";
      box.dataset.reason = r.reason_code || "";
      box.dataset.sessionId = r.session_id || "";
      const serverMsg = state.lang === "zh" ? r.message_zh : r.message_en;
      if (decision === "CONFIRMED") {
        title = t("result.confirmed.title");
        const until = r.confirmation && r.confirmation.valid_until;
        if (until) {
          valid.hidden = false;
          valid.dataset.validUntil = until;
          // Keep the date on one line: "有效期至 <2027年11月25日>".
          const [before, after] = t("result.confirmed.valid").split("{date}");
          const dateEl = document.createElement("span");
          dateEl.className = "nowrap";
          dateEl.textContent = formatDate(until);
          valid.replaceChildren(before, dateEl, after || "");
        }
        next = t("result.confirmed.next");
        retry.hidden = true;
      } else if (decision === "RETRY") {
        title = t("result.retry.title");
        const missed = r.missed_challenge;
        if (missed && I18N.zh[`action.${missed}`] !== undefined) {
          box.dataset.missed = missed;
          detail = t("result.retry.missed", { action: t(`action.${missed}`) });
          next = t("result.retry.next"); // the advice that fits a missed action, and only that
        } else {
          detail = serverMsg || "";
        }
        retry.hidden = false;
      } else {
        // Review: one title, one sentence. The reason stays with the caseworker (never "attack" here).
        title = t("result.review.title");
        next = t("result.review.next");
        retry.hidden = true;
      }
      $("result-icon").innerHTML = ICONS[decision] || ICONS.REVIEW;
    } else {
      box.dataset.decision = "";
      box.dataset.error = e.code;
      box.dataset.reason = "";
      title = t("error.title");
      if (e.code === "RATE_LIMITED" && e.retryAfterS) {
        const until = new Date(e.at + e.retryAfterS * 1000);
        box.dataset.until = until.toISOString();
        detail = t("error.RATE_LIMITED_UNTIL", { when: formatUntil(until, new Date(e.at)) });
      } else {
        const key = I18N.zh[`error.${e.code}`] !== undefined ? `error.${e.code}` : "error.UNKNOWN";
        detail = t(key);
      }
      // Retrying helps for transient problems; not for a mismatch, a suspension or a rate limit.
      retry.hidden = ["NOT_FOUND", "NO_TEMPLATE", "PENSIONER_SUSPENDED", "RATE_LIMITED", "BAD_ID_NUMBER", "CAMERA_UNAVAILABLE"].includes(e.code);
      $("result-icon").innerHTML = ICONS.ERROR;
    }
    $("result-title").textContent = title;
    $("result-detail").textContent = detail;
    $("result-next").textContent = next;
    return [title, detail, next].filter(Boolean).join("。");
  }

  function showResult(result) {
    state.result = result;
    state.error = null;
    showScreen("result");
    speak(renderOutcome());
    $("result").focus();
  }

  function showError(err) {
    state.result = null;
    const code = err instanceof ApiError ? err.code : "UNKNOWN";
    if (!(err instanceof ApiError)) console.error(err); // eslint-disable-line no-console
    state.error = { code, retryAfterS: err instanceof ApiError ? err.retryAfterS : null, at: Date.now() };
    showScreen("result");
    speak(renderOutcome());
    $("result").focus();
  }

  function showDenied() {
    showScreen("denied");
    // Open the help for the browser this most likely is; the others stay one tap away.
    const ua = navigator.userAgent || "";
    const which = /MicroMessenger/i.test(ua) ? "wechat" : /iPhone|iPad|iPod/i.test(ua) ? "ios" : "android";
    for (const d of document.querySelectorAll("#screen-denied details")) d.open = d.dataset.browser === which;
    speak(t("denied.speech"));
    $("denied-title").focus();
  }

  // ---------------------------------------------------------------------------------------------
  // Flow: form -> prepare -> (tap) camera -> session + countdown -> paced steps -> result
  function setBusy(busy) {
    state.busy = busy;
    for (const id of ["start", "prepare-go", "denied-retry", "retry"]) $(id).disabled = busy;
  }

  function fieldError(inputId, errorId, message) {
    const input = $(inputId);
    const el = $(errorId);
    el.textContent = message || "";
    el.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function validateForm() {
    const id = validateIdNumber($("id-number").value);
    const name = $("name").value.trim();
    fieldError("id-number", "id-error", id.ok ? "" : t(`id.${id.reason}`));
    let nameReason = "";
    if (!name) nameReason = "name.empty";
    else if (name.length > 64) nameReason = "name.long";
    fieldError("name", "name-error", nameReason ? t(nameReason) : "");
    if (!id.ok) {
      $("id-number").focus();
      return null;
    }
    if (nameReason) {
      $("name").focus();
      return null;
    }
    if (ASSIST) {
      const where = $("location").value.trim();
      fieldError("location", "location-error", where ? "" : t("assist.location_empty"));
      if (!where) {
        $("location").focus();
        return null;
      }
      state.location = where;
    }
    return { idNumber: id.value, name };
  }

  /** One attempt. The camera opens first: a refused camera never creates a server session. */
  async function attempt() {
    if (state.busy) return;
    // Called from a tap: speaking now unlocks speech on iOS for the rest of the attempt.
    speak(t("capture.countdown"));
    setBusy(true);
    clearTimers();
    state.run += 1;
    const run = state.run;
    const video = $("preview");
    setHints([]);
    $("sent").textContent = "";
    $("sent").dataset.frames = "0";
    $("timeline-bar").style.width = "0%";
    setPhase({ kind: "starting" });
    showScreen("capture");
    try {
      try {
        await openCamera(video);
      } catch (err) {
        stopCamera();
        if (err instanceof ApiError && err.code === "CAMERA_DENIED") {
          showDenied();
          return;
        }
        throw err;
      }
      const sessionP = createSession(state.idNumber, state.name);
      sessionP.catch(() => undefined); // handled below, after the countdown
      await countdown(run);
      const session = await sessionP;
      if (run !== state.run) return;
      const result = await capturePaced(session, video, run);
      stopCamera();
      setPhase({ kind: "done" });
      showResult(result);
    } catch (err) {
      stopCamera();
      if (run !== state.run || (err instanceof ApiError && err.code === "CANCELLED")) return;
      showError(err);
    } finally {
      clearTimers();
      $("countdown").hidden = true;
      if (run === state.run) setBusy(false);
    }
  }

  function onSubmit(event) {
    event.preventDefault();
    if (state.busy) return;
    const values = validateForm();
    if (!values) return;
    state.idNumber = values.idNumber;
    state.name = values.name;
    showScreen("prepare");
    speak(t("prepare.speech")); // inside the tap: allowed to speak on every browser
    $("prepare-title").focus();
  }

  function goHome() {
    state.run += 1; // stops a running attempt at its next step
    stopCamera();
    clearTimers();
    setBusy(false);
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    state.result = null;
    state.error = null;
    state.phase = null;
    showScreen("form");
    $("id-number").focus();
  }

  function init() {
    state.lang = loadLang();
    applyLang();
    $("start-form").addEventListener("submit", onSubmit);
    if (ASSIST) initAssist();
    $("prepare-go").addEventListener("click", () => attempt());
    $("prepare-listen").addEventListener("click", () => speak(t("prepare.speech")));
    $("denied-retry").addEventListener("click", () => attempt());
    $("denied-home").addEventListener("click", goHome);
    $("retry").addEventListener("click", () => attempt());
    $("home").addEventListener("click", goHome);
    $("lang-toggle").addEventListener("click", () => {
      state.lang = state.lang === "zh" ? "en" : "zh";
      try {
        window.localStorage.setItem("lifecert.lang", state.lang);
      } catch (_) {
        /* storage may be disabled */
      }
      applyLang();
    });
    // Fix typing as it happens: full-width digits, lower-case x.
    $("id-number").addEventListener("blur", (e) => {
      e.target.value = normalizeIdNumber(e.target.value);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) return;
      if (window.speechSynthesis) window.speechSynthesis.cancel();
      // Leaving the page mid-capture: the camera stops and the attempt ends with a plain message.
      if ($("app").dataset.screen === "capture" && state.busy) {
        state.run += 1;
        stopCamera();
        clearTimers();
        setBusy(false);
        showError(new ApiError("PAGE_HIDDEN"));
      }
    });
  }

  // Exposed for tests and the console; the page itself does not depend on it.
  window.lifecert = { validateIdNumber, normalizeIdNumber, checkChar, formatUntil };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
