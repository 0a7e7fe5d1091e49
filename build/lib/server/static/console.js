// Keyboard shortcuts on the case page: a approve, r reject, v visit, f fraud, n note, j/k next/prev.
// Shortcuts never fire while typing in a field; fraud asks for confirmation first.
(function () {
  "use strict";
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = (ev.target && ev.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var el = document.querySelector('[data-key="' + ev.key + '"]');
    if (!el) return;
    ev.preventDefault();
    if (el.tagName === "A") { window.location.href = el.href; return; }
    if (el.tagName !== "FORM") return;
    if (el.dataset.needs) {  // e.g. reject needs a reason: focus it; Enter submits
      var field = el.querySelector('[name="' + el.dataset.needs + '"]');
      if (field) { field.focus(); return; }
    }
    if (el.querySelector("textarea")) { el.querySelector("textarea").focus(); return; }
    if (el.dataset.confirm && !window.confirm(el.querySelector("button").textContent + "?")) return;
    el.requestSubmit();
  });
})();
