// reportd console: every change is a fetch() to /api with the login's X-CSRF-Token.
// Data is only ever put into the page as text (textContent), never as HTML.
"use strict";
window.__errors = [];
window.onerror = function (msg, src, line) { window.__errors.push(String(msg) + " @" + src + ":" + line); };
window.addEventListener("unhandledrejection", function (e) { window.__errors.push("unhandled: " + String(e.reason)); });
window.addEventListener("securitypolicyviolation", function (e) { window.__errors.push("csp: " + e.violatedDirective + " " + e.blockedURI); });
// A script, style or image that failed to load (the capture phase sees them).
window.addEventListener("error", function (e) {
  if (e.target && e.target !== window) { window.__errors.push("resource: " + (e.target.src || e.target.href || e.target.tagName)); }
}, true);
// What the page's own scripts log as an error.
(function () {
  var logError = console.error;
  console.error = function () {
    window.__errors.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return logError.apply(console, arguments);
  };
})();

(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function flash(text, good) {
    var f = document.getElementById("flash");
    if (!f) { return; }
    f.textContent = text;
    f.className = good ? "good" : "";
  }

  function api(method, url, body) {
    var headers = { "X-CSRF-Token": csrf };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(url, init).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = { error: t }; }
        if (!r.ok) {
          var err = new Error((data && data.error) || ("HTTP " + r.status));
          err.field = data && data.field;
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  // For the task editor's script (editor.js).
  window.reportd = { api: api, flash: flash };

  // A target on this site, else "/": parsed as the browser will (it drops tabs and newlines,
  // so "/\t/host" would be "//host"), and kept only when its origin is this page's.
  function safeNext(next) {
    if (typeof next !== "string" || next === "") { return "/"; }
    try {
      var u = new URL(next, window.location.origin);
      if (u.origin === window.location.origin) { return u.pathname + u.search + u.hash; }
    } catch (e) { /* not a URL */ }
    return "/";
  }

  function showFieldError(form, field, text) {
    form.querySelectorAll(".fe").forEach(function (e) { e.textContent = ""; });
    if (field) {
      var el = form.querySelector('.fe[data-for="' + CSS.escape(field) + '"]');
      if (el) { el.textContent = text; return; }
    }
    flash(text, false);
  }

  function formBody(form) {
    var body = {};
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (el) {
      if (el.type === "checkbox") { body[el.name] = el.checked; return; }
      var v = el.value;
      if (v === "" && !el.hasAttribute("data-keep-empty")) { return; }
      // Not a number: sent as typed, so the API refuses it naming the field.
      if (el.getAttribute("data-type") === "number" && isFinite(Number(v))) { v = Number(v); }
      body[el.name] = v;
    });
    return body;
  }

  // <form data-api="/api/..." data-method="POST" data-then="reload|URL">
  document.querySelectorAll("form[data-api]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = formBody(form);
      var method = form.getAttribute("data-method") || "POST";
      var url = form.getAttribute("data-api");
      if (form.hasAttribute("data-url-name")) { url = url + "/" + encodeURIComponent(body.name || ""); delete body.name; }
      api(method, url, body).then(function () {
        var then = form.getAttribute("data-then") || "reload";
        if (then === "login") {
          var params = new URLSearchParams(window.location.search);
          window.location.assign(safeNext(params.get("next")));
        } else if (then === "reload") { window.location.reload(); } else { window.location.assign(safeNext(then)); }
      }).catch(function (e) { showFieldError(form, e.field, e.message); });
    });
  });

  // <button data-call="POST /api/..." data-done="text">
  document.querySelectorAll("button[data-call]").forEach(function (b) {
    b.addEventListener("click", function () {
      var parts = b.getAttribute("data-call").split(" ");
      var ask = b.getAttribute("data-confirm");
      if (ask && !window.confirm(ask)) { return; }
      b.disabled = true;
      api(parts[0], parts[1]).then(function (data) {
        var done = b.getAttribute("data-done");
        if (done === "logout") { window.location.assign("/login"); return; }
        if (done === "result" && data) {
          if (data.ok !== false && data.warning) {
            // Passed, but the account can do more than read: say so, as text.
            flash((data.message || "OK") + " \u2014 " + data.warning, true);
            var f = document.getElementById("flash");
            if (f) { f.className = "warn"; }
          } else {
            flash(data.ok === false ? (data.error || "failed") : (data.message || "OK"), data.ok !== false);
          }
          b.disabled = false;
          return;
        }
        flash(b.getAttribute("data-ok") || "OK", true);
        window.setTimeout(function () { window.location.reload(); }, 600);
      }).catch(function (e) { b.disabled = false; flash(e.message, false); });
    });
  });

  // <span data-probe="POST /api/data-sources/NAME/test">: up or down, filled in on load.
  document.querySelectorAll("[data-probe]").forEach(function (el) {
    var parts = el.getAttribute("data-probe").split(" ");
    api(parts[0], parts[1]).then(function (r) {
      el.textContent = r.ok ? el.getAttribute("data-up") : el.getAttribute("data-down") + (r.error ? ": " + r.error : "");
      el.className = "probe " + (r.ok ? "ok" : "bad");
    }).catch(function (e) { el.textContent = e.message; el.className = "probe bad"; });
  });

  // <input type=checkbox data-toggle="/api/tasks/1">: enable / disable.
  document.querySelectorAll("input[data-toggle]").forEach(function (c) {
    c.addEventListener("change", function () {
      var url = c.getAttribute("data-toggle") + (c.checked ? "/enable" : "/disable");
      c.disabled = true;
      api("POST", url).then(function () { c.disabled = false; }).catch(function (e) {
        c.checked = !c.checked; c.disabled = false; flash(e.message, false);
      });
    });
  });
})();
