/* The pensioner's proof-of-life page: form -> camera with challenges -> upload -> result.
   Plain ES2020, no build step, no external resources. Talks only to the public API
   (/api/v1, see notes/api_contract.md). */
(function () {
  "use strict";

  const API = "api/v1";
  const JPEG_QUALITY = 0.85;
  const CAPTURE_LONG_SIDE = 640; // px; frames are downscaled so that the long side is at most this
  const HINT_INTERVAL_MS = 500;
  const DARK_LUMA = 60; // mean luma 0..255 of the centre of a downscaled frame below which we ask for more light
  const CAMERA_TIMEOUT_MS = 15000;
  const UPLOAD_TIMEOUT_MS = 90000;

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

  const state = {
    lang: "zh",
    busy: false,
    idNumber: "",
    name: "",
    phase: null, // {kind: "starting"|"lead_in"|"challenge"|"done", index, total, name}
    result: null, // last result object from the API
    error: null, // last error code
    stream: null,
    timers: [],
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
    renderOutcome();
  }

  function showScreen(name) {
    for (const s of ["form", "capture", "upload", "result"]) $(`screen-${s}`).hidden = s !== name;
    $("app").dataset.screen = name;
    window.scrollTo(0, 0);
  }

  function speak(text) {
    if (!("speechSynthesis" in window) || typeof window.SpeechSynthesisUtterance !== "function") return;
    try {
      window.speechSynthesis.cancel();
      const u = new window.SpeechSynthesisUtterance(text);
      u.lang = state.lang === "zh" ? "zh-CN" : "en-US";
      u.rate = 0.9;
      const voice = window.speechSynthesis.getVoices().find((v) => v.lang && v.lang.replace("_", "-").startsWith(u.lang.slice(0, 2)));
      if (voice) u.voice = voice;
      window.speechSynthesis.speak(u);
    } catch (_) {
      /* speaking is a help, never a requirement */
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Icons (inline SVG, no external files)
  const svg = (body) => `<svg viewBox="0 0 64 64" width="64" height="64" fill="none" stroke="currentColor" stroke-width="4" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;
  const ICONS = {
    lead_in: svg('<circle cx="32" cy="32" r="22"/><circle cx="24" cy="28" r="3" fill="currentColor"/><circle cx="40" cy="28" r="3" fill="currentColor"/><path d="M24 41h16"/>'),
    blink: svg('<path d="M6 32c8-12 44-12 52 0"/><path d="M6 32c8 10 44 10 52 0" stroke-dasharray="4 6"/><path d="M16 40l-4 6M32 43v7M48 40l4 6"/>'),
    turn_left: svg('<circle cx="38" cy="32" r="18"/><path d="M30 30l-6 2 6 2"/><path d="M22 12H6m0 0l6-6M6 12l6 6"/>'),
    turn_right: svg('<circle cx="26" cy="32" r="18"/><path d="M34 30l6 2-6 2"/><path d="M42 12h16m0 0l-6-6m6 6l-6 6"/>'),
    open_mouth: svg('<circle cx="32" cy="32" r="24"/><circle cx="23" cy="24" r="3" fill="currentColor"/><circle cx="41" cy="24" r="3" fill="currentColor"/><ellipse cx="32" cy="43" rx="8" ry="10"/>'),
    nod: svg('<circle cx="32" cy="34" r="16"/><path d="M54 8v48m0-48l-6 6m6-6l6 6M54 56l-6-6m6 6l6-6"/>'),
    done: svg('<path d="M14 34l12 12 24-26"/>'),
    CONFIRMED: svg('<circle cx="32" cy="32" r="26"/><path d="M20 33l9 9 16-18"/>'),
    RETRY: svg('<path d="M50 32a18 18 0 1 1-6-13.4"/><path d="M46 8v12H34"/>'),
    REVIEW: svg('<circle cx="32" cy="22" r="10"/><path d="M12 56c2-12 10-18 20-18s18 6 20 18"/>'),
    ERROR: svg('<circle cx="32" cy="32" r="26"/><path d="M32 18v18"/><circle cx="32" cy="45" r="2" fill="currentColor"/>'),
  };

  // ---------------------------------------------------------------------------------------------
  // API
  class ApiError extends Error {
    constructor(code, status, message, details) {
      super(message || code);
      this.code = code;
      this.status = status || 0;
      this.details = details || {};
    }
  }

  function errorFromResponse(status, text) {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = null;
    }
    const err = body && body.error;
    if (err && typeof err.code === "string") return new ApiError(err.code, status, err.message, err.details);
    // No JSON error body (e.g. a proxy answered): fall back on the HTTP status.
    const byStatus = { 404: "NOT_FOUND", 410: "SESSION_EXPIRED", 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED" };
    return new ApiError(byStatus[status] || (status >= 500 ? "SERVER" : "UNKNOWN"), status);
  }

  async function createSession(idNumber, name) {
    let res;
    try {
      res = await fetch(`${API}/sessions`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ id_number: idNumber, name }),
        cache: "no-store",
      });
    } catch (_) {
      throw new ApiError("NETWORK");
    }
    const text = await res.text();
    if (res.status !== 201 && res.status !== 200) throw errorFromResponse(res.status, text);
    return JSON.parse(text);
  }

  /** POST the frames as multipart with XMLHttpRequest (for upload progress). */
  function uploadFrames(session, captured, onProgress) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      form.append("nonce", session.nonce);
      form.append("timestamps", JSON.stringify(captured.timestamps));
      captured.blobs.forEach((blob, i) => form.append("frames", blob, `frame_${String(i).padStart(3, "0")}.jpg`));
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${API}/sessions/${encodeURIComponent(session.session_id)}/frames`);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.timeout = UPLOAD_TIMEOUT_MS;
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
      };
      xhr.onload = () => {
        if (xhr.status === 200) {
          try {
            onProgress(1);
            resolve(JSON.parse(xhr.responseText));
          } catch (_) {
            reject(new ApiError("SERVER", xhr.status));
          }
        } else {
          reject(errorFromResponse(xhr.status, xhr.responseText));
        }
      };
      xhr.onerror = () => reject(new ApiError("NETWORK"));
      xhr.ontimeout = () => reject(new ApiError("NETWORK"));
      xhr.send(form);
    });
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
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
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

  function clearTimers() {
    for (const id of state.timers) clearTimeout(id);
    state.timers = [];
  }

  // ---------------------------------------------------------------------------------------------
  // Live hints: mean luminance of a 32x24 copy (cheap); face position only where FaceDetector exists.
  let faceDetector = null;
  if ("FaceDetector" in window) {
    try {
      faceDetector = new window.FaceDetector({ fastMode: true, maxDetectedFaces: 1 });
    } catch (_) {
      faceDetector = null;
    }
  }

  function setHint(key) {
    const el = $("hint");
    el.dataset.hint = key || "";
    el.textContent = key ? t(`hint.${key}`) : "";
  }

  async function checkHints(video, probe) {
    const ctx = probe.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, probe.width, probe.height);
    // Mean luma of the centre (where the oval puts the face), so a dark background alone does not count.
    const x0 = Math.round(probe.width / 4);
    const y0 = Math.round(probe.height / 5);
    const px = ctx.getImageData(x0, y0, probe.width - 2 * x0, probe.height - 2 * y0).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    const luma = sum / (px.length / 4);
    if (luma < DARK_LUMA) return "dark";
    if (!faceDetector) return "";
    try {
      const faces = await faceDetector.detect(video);
      if (!faces.length) return "no_face";
      const box = faces[0].boundingBox;
      const vw = video.videoWidth;
      const vh = video.videoHeight;
      if (box.width < 0.28 * Math.min(vw, vh)) return "closer";
      const cx = (box.x + box.width / 2) / vw - 0.5;
      const cy = (box.y + box.height / 2) / vh - 0.47;
      if (Math.abs(cx) > 0.18 || Math.abs(cy) > 0.2) return "centre";
    } catch (_) {
      return "";
    }
    return "";
  }

  // ---------------------------------------------------------------------------------------------
  // Capture: lead-in, then each challenge for challenge_window_ms; frames at the session's fps.
  function renderPhase() {
    const p = state.phase;
    const box = $("challenge");
    if (!p) return;
    let key;
    let icon;
    if (p.kind === "starting") {
      key = "capture.starting";
      icon = "";
    } else if (p.kind === "lead_in") {
      key = "capture.lead_in";
      icon = ICONS.lead_in;
    } else if (p.kind === "challenge") {
      key = `challenge.${p.name}`;
      icon = ICONS[p.name] || "";
    } else {
      key = "capture.done";
      icon = ICONS.done;
    }
    box.dataset.challenge = p.kind === "challenge" ? p.name : p.kind;
    $("challenge-icon").innerHTML = icon;
    $("challenge-text").textContent = t(key);
    $("challenge-step").textContent =
      p.kind === "challenge"
        ? t("challenge.step", { n: p.index + 1, total: p.total })
        : p.kind === "lead_in"
          ? t("capture.lead_in_sub")
          : "";
    return t(key);
  }

  function setPhase(phase) {
    state.phase = phase;
    const text = renderPhase();
    if (phase.kind === "lead_in" || phase.kind === "challenge") speak(text);
  }

  function capture(session, video) {
    const challenges = Array.isArray(session.challenges) ? session.challenges : [];
    const leadIn = Number(session.lead_in_ms) || 1500;
    const windowMs = Number(session.challenge_window_ms) || 3000;
    const fps = Math.min(15, Math.max(1, Number(session.fps) || 8));
    const maxFrames = Number(session.max_frames) || 1000;
    const total = leadIn + challenges.length * windowMs;
    const interval = 1000 / fps;

    const canvas = $("capture-canvas");
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    const scale = Math.min(1, CAPTURE_LONG_SIDE / Math.max(vw, vh));
    canvas.width = Math.round(vw * scale);
    canvas.height = Math.round(vh * scale);
    const ctx = canvas.getContext("2d");
    const probe = $("probe-canvas");
    const bar = $("timeline-bar");

    const blobs = [];
    const timestamps = [];
    return new Promise((resolve) => {
      const t0 = performance.now();
      setPhase({ kind: "lead_in" });
      challenges.forEach((name, i) => {
        state.timers.push(
          setTimeout(() => setPhase({ kind: "challenge", name, index: i, total: challenges.length }), leadIn + i * windowMs),
        );
      });

      let hintBusy = false;
      const hintTimer = setInterval(() => {
        if (hintBusy) return;
        hintBusy = true;
        checkHints(video, probe)
          .then(setHint, () => setHint(""))
          .finally(() => {
            hintBusy = false;
          });
      }, HINT_INTERVAL_MS);

      let k = 0;
      const tick = () => {
        const elapsed = performance.now() - t0;
        if (elapsed >= total) {
          clearInterval(hintTimer);
          clearTimers();
          setHint("");
          setPhase({ kind: "done" });
          bar.style.width = "100%";
          Promise.all(blobs).then((list) => {
            const kept = { blobs: [], timestamps: [] };
            list.forEach((b, i) => {
              if (b) {
                kept.blobs.push(b);
                kept.timestamps.push(timestamps[i]);
              }
            });
            resolve(kept);
          });
          return;
        }
        if (blobs.length < maxFrames) {
          // The preview is mirrored with CSS only; the canvas gets the frame as the camera delivers it.
          ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
          timestamps.push(Math.min(Math.round(elapsed), total - 1));
          blobs.push(new Promise((res) => canvas.toBlob(res, "image/jpeg", JPEG_QUALITY)));
        }
        bar.style.width = `${Math.min(100, (100 * elapsed) / total).toFixed(1)}%`;
        k += 1;
        state.timers.push(setTimeout(tick, Math.max(0, t0 + k * interval - performance.now())));
      };
      tick();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Result and error screens
  function formatDate(iso) {
    const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    if (!m) return iso || "";
    return state.lang === "zh" ? `${m[1]}年${Number(m[2])}月${Number(m[3])}日` : `${m[1]}-${m[2]}-${m[3]}`;
  }

  function renderOutcome() {
    const box = $("result");
    const r = state.result;
    const code = state.error;
    if (!r && !code) return "";
    const valid = $("result-valid");
    const retry = $("retry");
    valid.hidden = true;
    let title;
    let detail = "";
    let next = "";
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
        detail = serverMsg || "";
        next = t("result.retry.next");
        retry.hidden = false;
      } else {
        title = t("result.review.title");
        detail = serverMsg || "";
        next = t("result.review.next");
        retry.hidden = true;
      }
      $("result-icon").innerHTML = ICONS[decision] || ICONS.REVIEW;
    } else {
      box.dataset.decision = "";
      box.dataset.error = code;
      box.dataset.reason = "";
      title = t("error.title");
      const key = I18N.zh[`error.${code}`] !== undefined ? `error.${code}` : "error.UNKNOWN";
      detail = t(key);
      // Retrying helps for transient problems; not for a mismatch, a suspension or a rate limit.
      retry.hidden = ["NOT_FOUND", "NO_TEMPLATE", "PENSIONER_SUSPENDED", "RATE_LIMITED", "BAD_ID_NUMBER"].includes(code);
      $("result-icon").innerHTML = ICONS.ERROR;
    }
    $("result-title").textContent = title;
    $("result-detail").textContent = detail;
    $("result-next").textContent = next;
    return `${title}。${detail} ${next}`;
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
    state.error = err instanceof ApiError ? err.code : "UNKNOWN";
    if (!(err instanceof ApiError)) console.error(err); // eslint-disable-line no-console
    showScreen("result");
    speak(renderOutcome());
    $("result").focus();
  }

  // ---------------------------------------------------------------------------------------------
  // Flow
  function setBusy(busy) {
    state.busy = busy;
    const btn = $("start");
    btn.disabled = busy;
    btn.textContent = t(busy ? "form.busy" : "form.start");
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
    return { idNumber: id.value, name };
  }

  async function runSession() {
    if (state.busy) return;
    setBusy(true);
    clearTimers();
    let session;
    try {
      session = await createSession(state.idNumber, state.name);
    } catch (err) {
      setBusy(false);
      showError(err);
      return;
    }
    const video = $("preview");
    const upload = $("upload-progress");
    try {
      state.phase = { kind: "starting" };
      showScreen("capture");
      renderPhase();
      $("timeline-bar").style.width = "0%";
      await openCamera(video);
      const captured = await capture(session, video);
      stopCamera();
      showScreen("upload");
      $("screen-upload").dataset.frames = String(captured.blobs.length);
      upload.value = 0;
      $("upload-percent").textContent = "0%";
      const result = await uploadFrames(session, captured, (f) => {
        const pct = Math.round(100 * f);
        upload.value = pct;
        $("upload-percent").textContent = `${pct}%`;
      });
      showResult(result);
    } catch (err) {
      stopCamera();
      showError(err);
    } finally {
      clearTimers();
      setBusy(false);
    }
  }

  function onSubmit(event) {
    event.preventDefault();
    if (state.busy) return;
    const values = validateForm();
    if (!values) return;
    state.idNumber = values.idNumber;
    state.name = values.name;
    runSession();
  }

  function goHome() {
    stopCamera();
    clearTimers();
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
    $("retry").addEventListener("click", () => runSession());
    $("home").addEventListener("click", goHome);
    $("lang-toggle").addEventListener("click", () => {
      state.lang = state.lang === "zh" ? "en" : "zh";
      try {
        window.localStorage.setItem("lifecert.lang", state.lang);
      } catch (_) {
        /* storage may be disabled */
      }
      applyLang();
      if (!state.busy) setBusy(false);
    });
    // Fix typing as it happens: full-width digits, lower-case x.
    $("id-number").addEventListener("blur", (e) => {
      e.target.value = normalizeIdNumber(e.target.value);
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden && window.speechSynthesis) window.speechSynthesis.cancel();
    });
  }

  // Exposed for tests and the console; the page itself does not depend on it.
  window.lifecert = { validateIdNumber, normalizeIdNumber, checkChar };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
