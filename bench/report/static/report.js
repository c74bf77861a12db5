/* genau-bench report page. Every text from the data is set with textContent (never parsed as HTML);
   the prompt table is paginated and its <audio preload="none"> elements are created only for the
   rows on screen, so 1000 prompts x 8 models load without freezing. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return Number(v.toPrecision(digits || 4)).toString();
  }
  function fmtP(p) {
    if (p === null || p === undefined) return "";
    return p < 1e-4 ? "<1e-4" : p.toFixed(4);
  }

  /* ---------------------------------------------------------------- header */
  document.getElementById("title").textContent = data.title;
  document.getElementById("subtitle").textContent = data.subtitle;
  if (data.banner && data.banner.length) {
    var banner = document.getElementById("banner");
    banner.hidden = false;
    data.banner.forEach(function (line) { banner.appendChild(el("div", "nc", line)); });
  }

  /* ---------------------------------------------------------------- leaderboards */
  var lbRoot = document.getElementById("leaderboards");
  data.leaderboards.forEach(function (lb) {
    lbRoot.appendChild(el("h3", null, "Protocol " + lb.protocol));
    var table = el("table"), thead = el("thead"), tr = el("tr");
    ["rank", "model", "weights", "n evaluated"].concat(lb.columns).forEach(function (c, i) {
      tr.appendChild(el("th", i >= 3 ? "num" : null, c));
    });
    thead.appendChild(tr); table.appendChild(thead);
    var tbody = el("tbody");
    lb.rows.forEach(function (r) {
      var row = el("tr", r.reported ? "reported" : null);
      row.appendChild(el("td", "num", r.rank === null ? "-" : r.rank));
      var m = el("td", "model", r.model);
      if (r.reported) m.title = r.source + "\n" + r.facts;
      row.appendChild(m);
      var w = el("td", r.comparable || r.reported ? null : "nc", r.weights);
      if (r.group) w.title = "comparison group: " + r.group;
      row.appendChild(w);
      row.appendChild(el("td", "num", r.n === null ? "" : r.n));
      lb.columns.forEach(function (c) {
        var cell = r.cells[c], td;
        if (!cell) { td = el("td", "num missing", ""); }
        else if (cell[0] === null) {
          td = el("td", "missing", cell[3] ? "missing" : "");
          if (cell[3]) td.title = cell[3];
        }
        else {
          var text = fmt(cell[0]);
          if (cell[1] !== null && cell[2] !== null) text += " [" + fmt(cell[1]) + ", " + fmt(cell[2]) + "]";
          td = el("td", "num", text);
          if (cell[3]) td.title = cell[3];
        }
        row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
    lbRoot.appendChild(table);
    lbRoot.appendChild(el("div", "small", lb.caption));
  });
  if (data.reported_facts.length) {
    var det = el("details"), sum = el("summary", null, "Reported numbers: how each paper computed them (" +
      data.reported_facts.length + " sources)");
    det.appendChild(sum);
    var ul = el("ul");
    data.reported_facts.forEach(function (f) {
      var li = el("li");
      li.appendChild(el("strong", null, f.label));
      li.appendChild(el("div", "small", "source: " + f.source));
      var inner = el("ul");
      f.facts.forEach(function (x) { inner.appendChild(el("li", "small", x)); });
      li.appendChild(inner);
      ul.appendChild(li);
    });
    det.appendChild(ul);
    lbRoot.appendChild(det);
  }
  data.charts.forEach(function (c) {
    var img = el("img");
    img.alt = "leaderboard chart, protocol " + c.protocol + " (bars: 95% bootstrap intervals)";
    img.src = c.uri;
    document.getElementById("chart").appendChild(img);
  });

  /* ---------------------------------------------------------------- paired comparisons */
  if (data.pairs.length) {
    var pr = document.getElementById("pair-tables");
    document.getElementById("pairs").hidden = false;
    pr.appendChild(el("p", "small", data.pairs_caption));
    data.pairs.forEach(function (group) {
      pr.appendChild(el("h3", null, "Protocol " + group.protocol));
      var table = el("table"), tr = el("tr");
      ["A", "B", "metric", "n", "A - B", "95% CI", "p", "p (Holm)", "effect", "better"].forEach(function (c, i) {
        tr.appendChild(el("th", i >= 3 && i <= 8 ? "num" : null, c));
      });
      var thead = el("thead"); thead.appendChild(tr); table.appendChild(thead);
      var tbody = el("tbody");
      group.rows.forEach(function (r) {
        var row = el("tr");
        row.appendChild(el("td", null, r.a));
        row.appendChild(el("td", null, r.b));
        row.appendChild(el("td", null, r.column));
        row.appendChild(el("td", "num", r.n));
        if (r.diff === null) {
          var td = el("td", "missing", "not compared: " + r.reason); td.colSpan = 6; row.appendChild(td);
        } else {
          row.appendChild(el("td", "num", fmt(r.diff)));
          row.appendChild(el("td", "num", "[" + fmt(r.lo) + ", " + fmt(r.hi) + "]"));
          row.appendChild(el("td", "num", fmtP(r.p)));
          row.appendChild(el("td", "num", fmtP(r.p_holm)));
          row.appendChild(el("td", "num", r.effect_kind + "=" + fmt(r.effect, 3)));
          var winner = r.better === "A" ? r.a : r.better === "B" ? r.b : "-";
          row.appendChild(el("td", r.better ? "better-" + r.better : null, winner));
        }
        tbody.appendChild(row);
      });
      table.appendChild(tbody);
      pr.appendChild(table);
    });
  }

  /* ---------------------------------------------------------------- notes */
  if (data.notes.length) {
    document.getElementById("notes-section").hidden = false;
    var notes = document.getElementById("notes");
    data.notes.forEach(function (n) { notes.appendChild(el("li", null, n)); });
  }

  /* ---------------------------------------------------------------- prompt table */
  var systems = data.systems, columns = data.columns, rows = data.rows;
  var ID = 0, PROMPT = 1, REF = 2, CLIPS = 3, SCORES = 4;
  var state = { order: rows.map(function (_, i) { return i; }), view: null, sortKey: null, sortDir: 1,
                page: 0, pageSize: 50, filter: "" };
  var hasRef = rows.some(function (r) { return r[REF] !== null; });
  var colsBySystem = systems.map(function () { return []; });
  columns.forEach(function (c, i) { colsBySystem[c.sys].push(i); });

  var thead = document.querySelector("#prompt-table thead"), tbody = document.querySelector("#prompt-table tbody");
  var headerCells = {};
  (function buildHeader() {
    var r1 = el("tr"), r2 = el("tr");
    function sortable(th, key) {
      th.classList.add("sortable");
      th.dataset.sort = key;
      th.addEventListener("click", function () { sortBy(key, state.sortKey === key ? -state.sortDir : 1); });
      headerCells[key] = th;
    }
    var idTh = el("th", null, "clip id"); idTh.rowSpan = 2; sortable(idTh, "id"); r1.appendChild(idTh);
    var pTh = el("th", null, "prompt"); pTh.rowSpan = 2; sortable(pTh, "prompt"); r1.appendChild(pTh);
    if (hasRef) { var rTh = el("th", null, "reference"); rTh.rowSpan = 2; r1.appendChild(rTh); }
    systems.forEach(function (s, si) {
      var th = el("th", s.comparable ? null : "nc", s.key + (s.comparable ? "" : " (NOT COMPARABLE)"));
      th.colSpan = 1 + colsBySystem[si].length;
      th.title = s.weights;
      r1.appendChild(th);
      r2.appendChild(el("th", null, "clip"));
      colsBySystem[si].forEach(function (ci) {
        var c = columns[ci], th2 = el("th", "num", c.label);
        th2.title = c.column + " (protocol " + c.protocol + "; " +
          (c.hib === null ? "descriptive" : c.hib ? "higher is better" : "lower is better") + ")";
        sortable(th2, "c" + ci);
        r2.appendChild(th2);
      });
    });
    thead.appendChild(r1); thead.appendChild(r2);
  })();

  (function buildWorst() {
    var box = document.getElementById("worst");
    if (!columns.length) { box.textContent = "No per-clip scores in these records (see Notes)."; return; }
    box.appendChild(el("div", "small", "Worst prompts (one click: sorted worst first):"));
    systems.forEach(function (s, si) {
      if (!colsBySystem[si].length) return;
      var line = el("div");
      line.appendChild(el("span", "sys", s.key));
      colsBySystem[si].forEach(function (ci) {
        var c = columns[ci];
        if (c.hib === null) return;
        var b = el("button", null, c.label);
        b.type = "button";
        b.dataset.worst = s.key + "|" + c.column;
        b.title = "worst prompts for " + s.key + " on " + c.column;
        b.addEventListener("click", function () {
          state.filter = ""; document.getElementById("filter").value = "";
          sortBy("c" + ci, c.hib ? 1 : -1);
        });
        line.appendChild(b);
      });
      box.appendChild(line);
    });
  })();

  function value(i, key) {
    var r = rows[i];
    if (key === "id") return r[ID];
    if (key === "prompt") return r[PROMPT];
    return r[SCORES][+key.slice(1)];
  }
  function sortBy(key, dir) {
    state.sortKey = key; state.sortDir = dir;
    state.order.sort(function (a, b) {
      var va = value(a, key), vb = value(b, key);
      var na = va === null || va === undefined, nb = vb === null || vb === undefined;
      if (na || nb) return na === nb ? a - b : na ? 1 : -1;   // missing values last, either direction
      if (va < vb) return -dir;
      if (va > vb) return dir;
      return a - b;
    });
    Object.keys(headerCells).forEach(function (k) {
      headerCells[k].classList.remove("sorted-asc", "sorted-desc");
    });
    headerCells[key].classList.add(dir > 0 ? "sorted-asc" : "sorted-desc");
    state.page = 0;
    applyFilter();
  }
  function applyFilter() {
    var f = state.filter.toLowerCase();
    state.view = f ? state.order.filter(function (i) {
      return rows[i][PROMPT].toLowerCase().indexOf(f) >= 0 || rows[i][ID].toLowerCase().indexOf(f) >= 0;
    }) : state.order;
    render();
  }
  function audio(src) {
    if (src === null) return el("span", "missing", "no clip");
    var a = document.createElement("audio");
    a.controls = true;
    a.preload = "none";
    a.src = src;
    return a;
  }
  function render() {
    var view = state.view, n = view.length;
    var pages = Math.max(1, Math.ceil(n / state.pageSize));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * state.pageSize, stop = Math.min(n, start + state.pageSize);
    var frag = document.createDocumentFragment();
    for (var k = start; k < stop; k++) {
      var r = rows[view[k]], tr = el("tr");
      tr.dataset.id = r[ID];
      tr.appendChild(el("td", null, r[ID]));
      tr.appendChild(el("td", "prompt", r[PROMPT]));
      if (hasRef) { var td = el("td"); td.appendChild(audio(r[REF])); tr.appendChild(td); }
      for (var si = 0; si < systems.length; si++) {
        var ctd = el("td"); ctd.appendChild(audio(r[CLIPS][si])); tr.appendChild(ctd);
        var cs = colsBySystem[si];
        for (var j = 0; j < cs.length; j++) {
          var v = r[SCORES][cs[j]];
          tr.appendChild(el("td", v === null ? "num missing" : "num", v === null ? "" : fmt(v)));
        }
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    document.getElementById("page-info").textContent = n ? ("rows " + (start + 1) + "-" + stop + " of " + n +
      (n < rows.length ? " (filtered from " + rows.length + ")" : "") + ", page " + (state.page + 1) + " of " + pages)
      : "no prompt matches the filter";
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
  }

  var timer = null;
  document.getElementById("filter").addEventListener("input", function (e) {
    clearTimeout(timer);
    timer = setTimeout(function () { state.filter = e.target.value; state.page = 0; applyFilter(); }, 120);
  });
  document.getElementById("page-size").addEventListener("change", function (e) {
    state.pageSize = +e.target.value; state.page = 0; render();
  });
  document.getElementById("prev").addEventListener("click", function () { state.page -= 1; render(); });
  document.getElementById("next").addEventListener("click", function () { state.page += 1; render(); });

  applyFilter();
  document.body.dataset.ready = "1";
  window.__reportReady = performance.now();
})();
