/* Merchant pages: device fingerprint, live fee labels, live withdrawal progress. No libraries. */
(function () {
  "use strict";

  // --- device fingerprint -------------------------------------------------------------------------------
  // A stable hash of what this browser looks like. Not a secret and not proof of anything: a risk signal
  // ("same device as before?"), sent as the `dfp` cookie and the hidden `device` form field.
  function hash53(str, seed) {
    var h1 = 0xdeadbeef ^ seed, h2 = 0x41c6ce57 ^ seed;
    for (var i = 0; i < str.length; i++) {
      var ch = str.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    var n = 4294967296 * (2097151 & h2) + (h1 >>> 0);
    return ("0000000000000" + n.toString(16)).slice(-14);
  }

  function canvasSample() {
    try {
      var c = document.createElement("canvas");
      c.width = 200; c.height = 40;
      var g = c.getContext("2d");
      g.textBaseline = "top";
      g.font = "16px sans-serif";
      g.fillStyle = "#f60"; g.fillRect(100, 1, 62, 20);
      g.fillStyle = "#069"; g.fillText("卡盟提现 fp ✓", 2, 15);
      return c.toDataURL();
    } catch (e) {
      return "no-canvas";
    }
  }

  function fingerprint() {
    var tz = "";
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { tz = ""; }
    var parts = [
      navigator.userAgent, navigator.language, (navigator.languages || []).join(","), navigator.platform,
      screen.width + "x" + screen.height + "x" + screen.colorDepth, window.devicePixelRatio || 1,
      tz, new Date().getTimezoneOffset(), navigator.hardwareConcurrency || 0, canvasSample()
    ].join("||");
    return "fp" + hash53(parts, 1) + hash53(parts, 2);
  }

  var dfp = fingerprint();
  document.cookie = "dfp=" + dfp + "; path=/; max-age=31536000; SameSite=Lax";
  function fillDevice() {
    var inputs = document.querySelectorAll('input[name="device"]');
    for (var i = 0; i < inputs.length; i++) inputs[i].value = dfp;
  }

  // --- forms: no double submit from a double click (the server is idempotent anyway) --------------------
  function guardSubmits() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (form.dataset.submitting === "1") { ev.preventDefault(); return; }
      // data-confirm replaces inline onsubmit handlers, which the Content-Security-Policy does not run.
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { ev.preventDefault(); return; }
      form.dataset.submitting = "1";
      var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
      for (var i = 0; i < buttons.length; i++) {
        buttons[i].classList.add("is-busy");
        if (buttons[i].dataset.busyText) buttons[i].textContent = buttons[i].dataset.busyText;
      }
    });
  }

  // --- step 1: fees follow the amount -------------------------------------------------------------------
  function liveFees() {
    var form = document.querySelector("form[data-quote-url]");
    if (!form) return;
    var amount = form.querySelector('input[name="amount"]');
    var hint = form.querySelector("[data-amount-hint]");
    var timer = null;
    function update() {
      var value = amount.value.trim();
      var cells = form.querySelectorAll("[data-fee-for]");
      if (!value) {
        for (var i = 0; i < cells.length; i++) cells[i].textContent = "输入金额后显示";
        if (hint) hint.textContent = "";
        return;
      }
      fetch(form.dataset.quoteUrl + "?amount=" + encodeURIComponent(value), {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (hint) hint.textContent = data.ok ? "" : data.error;
          for (var i = 0; i < cells.length; i++) {
            var q = data.ok ? data.speeds[cells[i].dataset.feeFor] : null;
            cells[i].textContent = q ? ("手续费 ¥" + q.fee + "，到账 ¥" + q.net) : "—";
          }
        })
        .catch(function () { /* the server-rendered rule text stays */ });
    }
    amount.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 300); });
  }

  // --- detail: live progress ----------------------------------------------------------------------------
  function liveProgress() {
    var box = document.querySelector("[data-poll-url]");
    if (!box || box.dataset.final === "1") return;
    var status = box.dataset.status;
    var busy = false;
    var timer = setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(box.dataset.pollUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          if (data.status !== status) {
            // Another state brings other buttons (verify, cancel, retry): render the whole page again.
            clearInterval(timer);
            window.location.reload();
            return;
          }
          box.innerHTML = data.html;
          if (data.final) clearInterval(timer);
        })
        .catch(function () { /* keep polling; a blip in the network is not news */ })
        .then(function () { busy = false; });
    }, 2500);
  }

  function start() {
    fillDevice();
    guardSubmits();
    liveFees();
    liveProgress();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
