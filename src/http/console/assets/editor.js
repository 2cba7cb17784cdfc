// reportd task editor (/tasks/new, /tasks/{id}/edit): the form becomes a task-file JSON body
// for POST /api/tasks or PUT /api/tasks/{id}; previews go to /api/preview, /api/cron/next and
// /api/filename/example; test messages to /api/notify/test. Data only as textContent.
"use strict";
(function () {
  var form = document.getElementById("task-editor");
  if (!form || !window.reportd) { return; }
  var api = window.reportd.api, flash = window.reportd.flash;
  var id = form.getAttribute("data-id");
  var list = document.getElementById("sheet-list");

  function val(id) { var el = document.getElementById(id); return el ? el.value.trim() : ""; }

  // Sheet rows: ids, labels and error slots follow their position (sheets[i]).
  function renumber() {
    list.querySelectorAll(".sheet").forEach(function (row, i) {
      var n = row.querySelector(".sheet-name"), q = row.querySelector(".sheet-sql");
      n.id = "sheet-" + i + "-name"; q.id = "sheet-" + i + "-sql";
      row.querySelector(".sheet-name-label").setAttribute("for", n.id);
      row.querySelector(".sheet-sql-label").setAttribute("for", q.id);
      n.setAttribute("data-path", "sheets[" + i + "].name");
      q.setAttribute("data-path", "sheets[" + i + "].sql");
      row.querySelector(".sheet-name-fe").setAttribute("data-for", "sheets[" + i + "].name");
      row.querySelector(".sheet-sql-fe").setAttribute("data-for", "sheets[" + i + "].sql");
      row.setAttribute("data-sheet", String(i));
    });
  }

  function clearErrors() { form.querySelectorAll(".fe").forEach(function (e) { e.textContent = ""; }); }

  function setPath(obj, path, value) {
    var keys = path.split(".");
    for (var i = 0; i < keys.length - 1; i++) {
      if (typeof obj[keys[i]] !== "object" || obj[keys[i]] === null) { obj[keys[i]] = {}; }
      obj = obj[keys[i]];
    }
    obj[keys[keys.length - 1]] = value;
  }

  function sectionOff(el) {
    var box = el.closest("fieldset.channel");
    var toggle = box && box.querySelector("input.section");
    return toggle ? !toggle.checked : false;
  }

  // The entries of a list field: separated by commas or new lines, except inside quotes or
  // angle brackets ("Doe, John" <j@example.com> is one address).
  function splitList(text) {
    var out = [], cur = "", quoted = false, angled = false;
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (c === '"' && !angled) { quoted = !quoted; }
      else if (c === "<" && !quoted) { angled = true; }
      else if (c === ">" && !quoted) { angled = false; }
      if ((c === "," || c === "\n") && !quoted && !angled) { out.push(cur); cur = ""; continue; }
      cur += c;
    }
    out.push(cur);
    return out.map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function body() {
    var b = {};
    form.querySelectorAll("[data-path]").forEach(function (el) {
      var path = el.getAttribute("data-path");
      if (path.indexOf("sheets[") === 0 || sectionOff(el)) { return; }
      var kind = el.getAttribute("data-kind") || "text";
      if (kind === "bool") { setPath(b, path, el.checked); return; }
      // Text is sent as typed (a template's trailing newline, a query's indentation); only
      // numbers and lists are trimmed. A field left empty is not set.
      var v = el.value;
      if (v.trim() === "") { return; }
      if (kind === "number") { var n = Number(v.trim()); setPath(b, path, isNaN(n) ? v.trim() : n); return; }
      if (kind === "list") { setPath(b, path, splitList(v)); return; }
      setPath(b, path, v);
    });
    form.querySelectorAll("input.section").forEach(function (t) {
      if (t.checked) {
        var keys = t.getAttribute("data-section").split("."), o = b;
        keys.forEach(function (k) { if (typeof o[k] !== "object") { o[k] = {}; } o = o[k]; });
      }
    });
    var on = [];
    form.querySelectorAll("input.notify-on").forEach(function (c) { if (c.checked) { on.push(c.value); } });
    setPath(b, "notify.on", on);
    var sheets = [];
    list.querySelectorAll(".sheet").forEach(function (row) {
      var sheet = { name: row.querySelector(".sheet-name").value.trim(), sql: row.querySelector(".sheet-sql").value };
      // Split read: a key column turns it on; readers and rows per range as typed (checked by the server).
      var col = row.querySelector(".sheet-split-column").value.trim();
      if (col) {
        sheet.split = {
          column: col,
          readers: Number(row.querySelector(".sheet-split-readers").value || 4),
          chunk_rows: Number(row.querySelector(".sheet-split-chunk").value || 100000)
        };
      }
      sheets.push(sheet);
    });
    if (sheets.length === 1 && sheets[0].name === "") {
      b.sql = sheets[0].sql;
      if (sheets[0].split) { b.split = sheets[0].split; }
    } else { b.sheets = sheets; }
    return b;
  }

  function showError(field, text) {
    clearErrors();
    if (field === "sql") { field = "sheets[0].sql"; }
    var f = field || "";
    while (f) {
      var slot = form.querySelector('.fe[data-for="' + CSS.escape(f) + '"]');
      if (slot) {
        slot.textContent = text;
        var input = form.querySelector('[data-path="' + CSS.escape(f) + '"]');
        (input || slot).focus && input && input.focus();
        if (input && input.scrollIntoView) { input.scrollIntoView({ block: "center" }); }
        return;
      }
      var cut = Math.max(f.lastIndexOf("."), f.lastIndexOf("["));
      f = cut > 0 ? f.slice(0, cut) : "";
    }
    flash(text, false);
  }

  // SQL preview: the first 100 rows as a table, or the error next to the SQL.
  function preview(row) {
    var out = row.querySelector(".preview"), fe = row.querySelector(".sheet-sql-fe");
    out.textContent = ""; fe.textContent = "";
    api("POST", "/api/preview", { data_source: val("f-data_source"), sql: row.querySelector(".sheet-sql").value, limit: 100 }).then(function (r) {
      var t = document.createElement("table"); t.className = "preview-table";
      var hr = document.createElement("tr");
      r.columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; hr.appendChild(th); });
      var thead = document.createElement("thead"); thead.appendChild(hr); t.appendChild(thead);
      var tb = document.createElement("tbody");
      r.rows.forEach(function (cells) {
        var tr = document.createElement("tr");
        cells.forEach(function (c) { var td = document.createElement("td"); td.textContent = c === null ? "" : (typeof c === "object" ? JSON.stringify(c) : String(c)); tr.appendChild(td); });
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      var note = document.createElement("div"); note.className = "muted";
      note.textContent = r.rows.length + (r.truncated ? "+" : "") + " rows · " + r.elapsed_ms + " ms";
      out.appendChild(note); out.appendChild(t);
    }).catch(function (e) { fe.textContent = e.message; });
  }

  function wire(row) {
    row.querySelector(".sheet-preview").addEventListener("click", function () { preview(row); });
    row.querySelector(".sheet-remove").addEventListener("click", function () {
      if (list.querySelectorAll(".sheet").length > 1) { row.remove(); renumber(); }
    });
  }
  list.querySelectorAll(".sheet").forEach(wire);
  renumber();
  document.getElementById("sheet-add").addEventListener("click", function () {
    var tpl = document.getElementById("sheet-template");
    var row = tpl.content.firstElementChild.cloneNode(true);
    list.appendChild(row); wire(row); renumber();
    row.querySelector(".sheet-name").focus();
  });

  function debounce(fn, ms) { var t = null; return function () { window.clearTimeout(t); t = window.setTimeout(fn, ms); }; }

  // Cron: the next five fires as you type, or the API's error next to the field.
  var cronSeq = 0;
  var cron = debounce(function () {
    var seq = ++cronSeq, ol = document.getElementById("cron-fires");
    var fe = form.querySelector('.fe[data-for="cron"]');
    var req = { cron: val("f-cron"), count: 5 };
    if (val("f-timezone")) { req.timezone = val("f-timezone"); }
    api("POST", "/api/cron/next", req).then(function (r) {
      if (seq !== cronSeq) { return; }
      fe.textContent = ""; ol.textContent = "";
      r.fires.forEach(function (f) { var li = document.createElement("li"); li.textContent = f; ol.appendChild(li); });
    }).catch(function (e) {
      if (seq !== cronSeq) { return; }
      ol.textContent = "";
      if (e.field === "timezone") { form.querySelector('.fe[data-for="timezone"]').textContent = e.message; } else { fe.textContent = e.message; }
    });
  }, 300);

  // File name: an example of the name a run now would write.
  var nameSeq = 0;
  var filename = debounce(function () {
    var seq = ++nameSeq, out = document.getElementById("filename-example");
    var fe = form.querySelector('.fe[data-for="output.filename"]');
    var req = { name: val("f-name"), format: val("f-format") };
    if (val("f-filename")) { req.filename = val("f-filename"); }
    if (val("f-timezone")) { req.timezone = val("f-timezone"); }
    api("POST", "/api/filename/example", req).then(function (r) {
      if (seq !== nameSeq) { return; }
      fe.textContent = ""; out.textContent = r.example;
    }).catch(function (e) { if (seq === nameSeq) { out.textContent = ""; fe.textContent = e.message; } });
  }, 300);

  ["f-cron", "f-timezone"].forEach(function (i) { document.getElementById(i).addEventListener("input", cron); });
  ["f-name", "f-filename", "f-timezone"].forEach(function (i) { document.getElementById(i).addEventListener("input", filename); });
  document.getElementById("f-format").addEventListener("change", filename);
  cron(); filename();

  // Send a test message through a channel (the stored task's settings when editing).
  form.querySelectorAll("button.notify-test").forEach(function (b) {
    b.addEventListener("click", function () {
      var out = b.parentNode.querySelector(".notify-answer");
      var req = { channel: b.getAttribute("data-channel") };
      if (id) { req.task = id; }
      b.disabled = true; out.textContent = "…";
      api("POST", "/api/notify/test", req).then(function (r) {
        b.disabled = false; out.textContent = r.message; out.className = "notify-answer " + (r.ok ? "ok" : "bad");
      }).catch(function (e) { b.disabled = false; out.textContent = e.message; out.className = "notify-answer bad"; });
    });
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearErrors();
    var save = document.getElementById("save");
    save.disabled = true;
    api(id ? "PUT" : "POST", id ? "/api/tasks/" + encodeURIComponent(id) : "/api/tasks", body()).then(function (t) {
      window.location.assign("/tasks/" + encodeURIComponent(String(t.id)));
    }).catch(function (e) { save.disabled = false; showError(e.field, e.message); });
  });
})();
