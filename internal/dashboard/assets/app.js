// Vigil dashboard. Talks only to its own origin: the page's relative
// paths api/… and stream. Every value from the server reaches the page as
// text (textContent), never as HTML.
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="vigil-csrf"]').getAttribute("content");
  var FEED_MAX = 200;
  var seen = new Set();
  var seenOrder = [];
  var charts = {};
  var refreshTimer = null;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmtTime(t) {
    var d = new Date(t);
    return isNaN(d) ? "" : d.toLocaleString();
  }
  function fmtBytes(n) {
    n = Number(n) || 0;
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function place(e) {
    return [e.city, e.country, e.asn ? "AS" + e.asn : ""].filter(Boolean).join(", ");
  }

  function getJSON(path) {
    return fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          if (!r.ok) throw new Error(b.error || ("HTTP " + r.status));
          return b;
        });
      });
  }
  function post(path, body) {
    return fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        if (!r.ok) throw new Error(b.error || ("HTTP " + r.status));
        return b;
      });
    });
  }

  // ---- investigation links
  function subjectButton(kind, value) {
    if (!value) return el("span", "");
    var b = el("button", value, "linkish");
    b.type = "button";
    b.title = "Investigate " + value;
    b.addEventListener("click", function () { investigate(kind, value); });
    return b;
  }

  // ---- live feed
  function addEvent(e, fresh) {
    if (!e || !e.id || seen.has(e.id)) return;
    seen.add(e.id); seenOrder.push(e.id);
    if (seenOrder.length > 2000) seen.delete(seenOrder.shift());
    var tb = $("feed").tBodies[0];
    var tr = el("tr");
    tr.dataset.id = e.id;
    if (fresh) tr.className = "new";
    tr.appendChild(el("td", fmtTime(e.time)));
    tr.appendChild(el("td", e.type));
    tr.appendChild(el("td", e.severity, "sev-" + e.severity));
    var u = el("td"); u.appendChild(subjectButton("user", e.user)); tr.appendChild(u);
    var ip = el("td"); ip.appendChild(subjectButton("ip", e.ip)); tr.appendChild(ip);
    tr.appendChild(el("td", place(e)));
    tr.appendChild(el("td", e.site || ""));
    tb.insertBefore(tr, tb.firstChild);
    while (tb.rows.length > FEED_MAX) tb.deleteRow(tb.rows.length - 1);
    $("feed-count").textContent = "(" + tb.rows.length + " shown)";
    if (fresh) scheduleRefresh();
  }

  function connect() {
    var es = new EventSource("stream");
    var status = $("status");
    es.addEventListener("ready", function () { status.textContent = "live"; status.className = "pill live"; });
    es.addEventListener("event", function (m) {
      try { addEvent(JSON.parse(m.data), true); } catch (err) { /* not an event */ }
    });
    es.addEventListener("reset", function () { loadRecent(); });
    es.addEventListener("dropped", function () { status.textContent = "catching up"; status.className = "pill"; });
    es.onerror = function () { status.textContent = "reconnecting"; status.className = "pill down"; };
  }

  function loadRecent() {
    return getJSON("api/events?limit=100").then(function (page) {
      (page.events || []).slice().reverse().forEach(function (e) { addEvent(e, false); });
    });
  }

  // ---- overview: counters, charts, top offenders, decisions
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, 1500);
  }

  function refresh() {
    var w = $("window").value;
    return getJSON("api/overview?window=" + encodeURIComponent(w)).then(function (o) {
      renderCounters(o);
      renderCharts(o.stats);
      renderTop(o.stats.top);
      renderDecisions(o.decisions || []);
    }).catch(function (err) { showResult("Could not load the overview: " + err.message, true); });
  }

  function renderCounters(o) {
    var t = o.stats.totals || {}, ul = $("counters");
    var kinds = { block: 0, lock: 0, revoke: 0 };
    (o.decisions || []).forEach(function (d) {
      if (d.kind === "block") kinds.block++; else if (d.kind === "lock") kinds.lock++; else kinds.revoke++;
    });
    var items = [
      ["Failed logins", t.FAILED_LOGIN || 0], ["Successful logins", t.SUCCESSFUL_LOGIN || 0],
      ["Incidents", t.incidents || 0], ["Data accessed", fmtBytes(t.data_bytes || 0)],
      ["Active blocks", kinds.block], ["Locked accounts", kinds.lock], ["Revocations", kinds.revoke]
    ];
    clear(ul);
    items.forEach(function (it) {
      var li = el("li"); li.appendChild(el("span", it[1], "n")); li.appendChild(el("span", it[0], "l")); ul.appendChild(li);
    });
  }

  var palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  function chart(id, times, series) {
    var node = $(id);
    var width = Math.max(node.clientWidth || 300, 200);
    var opts = {
      width: width, height: 180,
      series: [{}].concat(series.map(function (s, i) {
        return { label: s.label, stroke: s.color || palette[i % palette.length], width: 2, points: { show: false } };
      })),
      axes: [{ stroke: getComputedStyle(document.body).color }, { stroke: getComputedStyle(document.body).color, size: 60 }],
      legend: { show: true }
    };
    var data = [times].concat(series.map(function (s) { return s.values; }));
    if (charts[id]) charts[id].destroy();
    clear(node);
    charts[id] = new uPlot(opts, data, node);
  }

  function renderCharts(s) {
    chart("chart-failed", s.times, [{ label: "failed / min", values: s.failed_auth_rate, color: "#dc2626" }]);
    chart("chart-logins", s.times, [{ label: "successful", values: s.successful_logins, color: "#16a34a" }]);
    chart("chart-data", s.times, [{ label: "bytes", values: s.data_bytes, color: "#2563eb" }]);
    var sevColors = { LOW: "#6b7280", MEDIUM: "#d97706", HIGH: "#dc2626", CRITICAL: "#7c3aed" };
    chart("chart-severity", s.times, ["LOW", "MEDIUM", "HIGH", "CRITICAL"].map(function (k) {
      return { label: k, values: s.by_severity[k], color: sevColors[k] };
    }));
    var types = Object.keys(s.by_type || {}).filter(function (t) {
      return t !== "SUCCESSFUL_LOGIN" && t !== "FAILED_LOGIN" && t !== "ADMIN_ACTION";
    }).sort();
    if (!types.length) types = [];
    chart("chart-types", s.times, types.length ? types.map(function (t) { return { label: t, values: s.by_type[t] }; })
      : [{ label: "no incidents", values: s.times.map(function () { return 0; }) }]);
  }

  function renderTop(top) {
    [["top-ips", top.ips, "ip"], ["top-users", top.users, "user"], ["top-nets", top.networks, null]].forEach(function (x) {
      var tb = $(x[0]).tBodies[0];
      clear(tb);
      (x[1] || []).forEach(function (c) {
        var tr = el("tr"), td = el("td");
        td.appendChild(x[2] ? subjectButton(x[2], c.key) : el("span", c.key));
        tr.appendChild(td); tr.appendChild(el("td", c.count)); tb.appendChild(tr);
      });
      if (!tb.rows.length) { var tr = el("tr"), td = el("td", "none", "note"); td.colSpan = 2; tr.appendChild(td); tb.appendChild(tr); }
    });
  }

  function actionButton(label, body, danger) {
    var b = el("button", label, danger ? "danger" : "");
    b.type = "button";
    b.dataset.action = body.action;
    b.addEventListener("click", function () {
      b.disabled = true;
      post("api/action", body).then(function (r) {
        showResult(label + " " + body.target + ": done", false);
        lastDecisions = null;
        refresh();
        return r;
      }).catch(function (err) {
        b.disabled = false;
        showResult(label + " " + body.target + " failed: " + err.message, true);
      });
    });
    return b;
  }

  var lastDecisions = null;
  function renderDecisions(ds) {
    // re-rendered only when they changed, so focus stays on a button
    var key = JSON.stringify(ds);
    if (key === lastDecisions) return;
    lastDecisions = key;
    var tb = $("decisions").tBodies[0];
    clear(tb);
    ds.forEach(function (d) {
      var tr = el("tr");
      tr.dataset.kind = d.kind; tr.dataset.target = d.target;
      tr.appendChild(el("td", d.kind));
      var t = el("td");
      t.appendChild(d.kind === "block" && d.target.indexOf("/") < 0 ? subjectButton("ip", d.target)
        : (d.kind === "lock" || d.kind === "revoke_user") ? subjectButton("user", d.target) : el("span", d.target));
      tr.appendChild(t);
      tr.appendChild(el("td", d.reason || ""));
      tr.appendChild(el("td", d.source));
      tr.appendChild(el("td", fmtTime(d.until)));
      var a = el("td");
      if (d.kind === "block") a.appendChild(actionButton("Unblock", { action: "unblock", target: d.target }));
      if (d.kind === "lock") {
        a.appendChild(actionButton("Unlock", { action: "unlock", target: d.target }));
        a.appendChild(document.createTextNode(" "));
        a.appendChild(actionButton("Revoke sessions", { action: "revoke", target: d.target }, true));
      }
      if (d.kind === "revoke_user" || d.kind === "revoke_jti") {
        a.appendChild(actionButton("Lift revocation", { action: "unrevoke", kind: d.kind, target: d.target }));
      }
      tr.appendChild(a);
      tb.appendChild(tr);
    });
    if (!ds.length) { var tr = el("tr"), td = el("td", "Nothing in force.", "note"); td.colSpan = 6; tr.appendChild(td); tb.appendChild(tr); }
  }

  function showResult(text, isErr) {
    var p = $("action-result");
    p.textContent = text;
    p.className = isErr ? "note err" : "note";
  }

  // ---- investigation
  function investigate(kind, value) {
    $("subject").value = value;
    var path = kind === "ip" ? "api/ip?addr=" + encodeURIComponent(value) : "api/user?name=" + encodeURIComponent(value);
    var box = $("report");
    clear(box);
    box.appendChild(el("p", "Loading " + value + "…", "note"));
    getJSON(path).then(function (r) { renderReport(kind, r); })
      .catch(function (err) { clear(box); box.appendChild(el("p", err.message, "note err")); });
    document.getElementById("investigate-section").scrollIntoView({ behavior: "smooth" });
  }

  function table(headers, rows) {
    var t = el("table"), th = el("thead"), tr = el("tr");
    headers.forEach(function (h) { var c = el("th", h); c.scope = "col"; tr.appendChild(c); });
    th.appendChild(tr); t.appendChild(th);
    var tb = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) { var td = el("td"); if (c instanceof Node) td.appendChild(c); else td.textContent = c == null ? "" : String(c); row.appendChild(td); });
      tb.appendChild(row);
    });
    if (!rows.length) { var row = el("tr"), td = el("td", "none", "note"); td.colSpan = headers.length; row.appendChild(td); tb.appendChild(row); }
    t.appendChild(tb);
    var wrap = el("div", null, "scroll"); wrap.appendChild(t);
    return wrap;
  }

  function renderReport(kind, r) {
    var box = $("report");
    clear(box);
    box.className = "report";
    var title = kind === "ip" ? r.ip : r.user;
    box.appendChild(el("h3", (kind === "ip" ? "Address " : "User ") + title));
    var dl = el("dl", null, "kv");
    function kv(k, v) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
    if (kind === "ip") {
      kv("Network", r.network);
      kv("Place", r.place ? place({ city: r.place.city, country: r.place.country, asn: r.place.asn }) : "unknown");
    } else {
      kv("Data (30 days)", fmtBytes(r.data.bytes) + " in " + r.data.events + " data-access events");
      kv("Learned logins", r.places.logins);
    }
    box.appendChild(dl);
    var actions = el("p");
    if (kind === "ip") actions.appendChild(actionButton("Block for 24h", { action: "block", target: r.ip }, true));
    else {
      actions.appendChild(actionButton("Lock for 24h", { action: "lock", target: r.user }, true));
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(actionButton("Revoke sessions", { action: "revoke", target: r.user }, true));
    }
    box.appendChild(actions);
    box.appendChild(el("h3", "Active decisions"));
    box.appendChild(table(["Kind", "Target", "Reason", "Until"], (r.decisions || []).map(function (d) { return [d.kind, d.target, d.reason, fmtTime(d.until)]; })));
    box.appendChild(el("h3", "Recent logins"));
    box.appendChild(table(["Time", "Outcome", kind === "ip" ? "User" : "IP", "Place", "Risk"], (r.logins || []).map(function (l) {
      return [fmtTime(l.time), l.type, kind === "ip" ? subjectButton("user", l.user) : subjectButton("ip", l.ip), place(l), l.risk_score == null ? "" : l.risk_score];
    })));
    if (kind === "user") {
      box.appendChild(el("h3", "Learned places"));
      box.appendChild(table(["Place", "First", "Last seen", "Logins"], (r.places.places || []).map(function (p) {
        return [place({ city: p.place.city, country: p.place.country, asn: p.place.asn }), fmtTime(p.first), fmtTime(p.seen), p.logins || ""];
      })));
      box.appendChild(el("h3", "Addresses used"));
      box.appendChild(table(["IP", "Events"], (r.addresses || []).map(function (c) { return [subjectButton("ip", c.key), c.count]; })));
    } else {
      box.appendChild(el("h3", "Users seen from it"));
      box.appendChild(table(["User", "Events"], (r.users || []).map(function (c) { return [subjectButton("user", c.key), c.count]; })));
    }
    box.appendChild(el("h3", "Events"));
    box.appendChild(table(["Time", "Type", "Severity", "User", "IP", "Place"], (r.events || []).map(function (e) {
      return [fmtTime(e.time), e.type, e.severity, e.user, e.ip, place(e)];
    })));
    box.focus();
  }

  $("investigate").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = $("subject").value.trim();
    if (!v) return;
    var isIP = /^[0-9.]+$/.test(v) || v.indexOf(":") >= 0;
    investigate(isIP ? "ip" : "user", v);
  });
  $("window").addEventListener("change", refresh);
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      Object.keys(charts).forEach(function (id) {
        var w = Math.max($(id).clientWidth || 300, 200);
        if (charts[id].width !== w) charts[id].setSize({ width: w, height: 180 });
      });
    }, 200);
  });
  setInterval(refresh, 30000);

  loadRecent().catch(function () { /* the stream still works */ }).then(function () {
    connect();
    refresh();
  });
})();
