/* SauCI UI: live refresh of pages, and the log viewer. No dependencies.
   Every HTML fragment inserted here comes from the server, already escaped. */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  /* Pages with queued or running builds re-read themselves and swap the
     [data-live] regions, until the server stops asking (build finished). */
  function liveRefresh() {
    var main = document.querySelector("main[data-refresh]");
    if (!main) return;
    var every = parseInt(main.getAttribute("data-refresh"), 10) || 2000;
    var timer = null;
    function tick() {
      timer = null;
      if (document.hidden) { schedule(); return; }
      var active = document.activeElement;
      if (active && active.closest && active.closest("[data-live] form")) { schedule(); return; }
      fetch(location.href, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (text === null) { schedule(); return; }
          var doc = new DOMParser().parseFromString(text, "text/html");
          document.querySelectorAll("[data-live]").forEach(function (old) {
            var fresh = doc.getElementById(old.id);
            if (fresh) old.replaceWith(document.importNode(fresh, true));
          });
          var again = doc.querySelector("main[data-refresh]");
          if (again) schedule();
          else if (doc.title) document.title = doc.title;
        })
        .catch(schedule);
    }
    function schedule() { if (!timer) timer = setTimeout(tick, every); }
    schedule();
  }

  function openTo(el) {
    for (var p = el; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
  }

  function showHash() {
    if (!/^#L\d+$/.test(location.hash)) return;
    var el = document.getElementById(location.hash.slice(1));
    if (el) { openTo(el); el.scrollIntoView({ block: "center" }); }
  }

  function logViewer() {
    var log = $("log");
    if (!log) return;
    var lines = $("log-lines");
    var start = parseInt(log.getAttribute("data-start"), 10);
    var timestamps = null;

    /* Earlier parts, one range at a time. */
    var earlier = $("log-earlier");
    if (earlier) earlier.addEventListener("click", function () {
      earlier.disabled = true;
      fetch(log.getAttribute("data-range-url") + "?end=" + start, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var y = document.documentElement.scrollHeight - window.scrollY;
          lines.insertAdjacentHTML("afterbegin", data.html);
          window.scrollTo(0, document.documentElement.scrollHeight - y);
          start = data.start;
          if (timestamps) applyTimestamps();
          if (start <= 0) earlier.remove();
          else { earlier.disabled = false; earlier.textContent = "Load earlier (" + Math.round(start / 1024) + " KiB before)"; }
          runSearch(false);
        })
        .catch(function () { earlier.disabled = false; });
    });

    /* Search in what is loaded: marks every match, Enter / Shift+Enter move. */
    var search = $("log-search"), count = $("log-count"), marks = [], current = -1;
    function clearMarks() {
      marks.forEach(function (m) {
        var parent = m.parentNode;
        parent.replaceChild(document.createTextNode(m.textContent), m);
        parent.normalize();
      });
      marks = []; current = -1;
    }
    function runSearch(jump) {
      clearMarks();
      var needle = search.value;
      if (!needle) { count.textContent = ""; return; }
      var lower = needle.toLowerCase();
      var walker = document.createTreeWalker(lines, NodeFilter.SHOW_TEXT, {
        acceptNode: function (n) {
          return n.parentElement.closest(".tx") ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
        }
      });
      var nodes = [];
      while (walker.nextNode()) nodes.push(walker.currentNode);
      nodes.forEach(function (node) {
        var text = node.nodeValue, idx = text.toLowerCase().indexOf(lower);
        while (idx >= 0 && marks.length < 5000) {
          var hit = node.splitText(idx);
          node = hit.splitText(needle.length);
          var mark = document.createElement("mark");
          hit.parentNode.replaceChild(mark, hit);
          mark.appendChild(hit);
          marks.push(mark);
          text = node.nodeValue; idx = text.toLowerCase().indexOf(lower);
        }
      });
      count.textContent = marks.length ? marks.length + " matches" : "no matches";
      if (jump && marks.length) move(1);
    }
    function move(step) {
      if (!marks.length) return;
      if (current >= 0) marks[current].classList.remove("cur");
      current = (current + step + marks.length) % marks.length;
      var m = marks[current];
      m.classList.add("cur"); openTo(m); m.scrollIntoView({ block: "center" });
      count.textContent = (current + 1) + " of " + marks.length;
    }
    var pending = null;
    search.addEventListener("input", function () {
      clearTimeout(pending); pending = setTimeout(function () { runSearch(true); }, 200);
    });
    search.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); move(e.shiftKey ? -1 : 1); }
      if (e.key === "Escape") { search.value = ""; runSearch(false); }
    });
    $("log-next").addEventListener("click", function () { move(1); });
    $("log-prev").addEventListener("click", function () { move(-1); });
    document.addEventListener("keydown", function (e) {
      if (e.key === "/" && document.activeElement === document.body) { e.preventDefault(); search.focus(); }
    });

    $("log-wrap").addEventListener("change", function (e) { log.classList.toggle("wrap", e.target.checked); });
    var expand = $("log-expand");
    expand.addEventListener("click", function () {
      var open = expand.textContent === "Expand all";
      log.querySelectorAll("details.grp").forEach(function (d) { d.open = open; });
      expand.textContent = open ? "Collapse all" : "Expand all";
    });

    /* Timestamps on demand, from the log's .ts sidecar. */
    function pad(n, w) { n = String(n); while (n.length < w) n = "0" + n; return n; }
    function applyTimestamps() {
      var ts = timestamps || [];
      lines.querySelectorAll(".ln").forEach(function (row) {
        var old = row.querySelector("time");
        if (old) old.remove();
        if (!timestamps) return;
        var o = parseInt(row.getAttribute("data-o"), 10), lo = 0, hi = ts.length - 1, at = null;
        while (lo <= hi) {
          var mid = (lo + hi) >> 1;
          if (ts[mid][0] <= o) { at = ts[mid][1]; lo = mid + 1; } else hi = mid - 1;
        }
        if (at === null) return;
        var d = new Date(at * 1000), t = document.createElement("time");
        t.dateTime = d.toISOString();
        t.textContent = pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) + "." + pad(d.getMilliseconds(), 3);
        row.insertBefore(t, row.querySelector(".tx"));
      });
    }
    $("log-ts").addEventListener("change", function (e) {
      if (!e.target.checked) { timestamps = null; applyTimestamps(); return; }
      fetch(log.getAttribute("data-ts-url") + "?start=0", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { timestamps = data.timestamps; applyTimestamps(); });
    });

    /* Live follow of a running step. */
    var streamUrl = log.getAttribute("data-stream-url");
    if (streamUrl && window.EventSource) {
      var source = new EventSource(streamUrl + "?offset=" + log.getAttribute("data-end"));
      source.addEventListener("lines", function (e) {
        var data = JSON.parse(e.data);
        var atBottom = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
        lines.insertAdjacentHTML("beforeend", data.html);
        log.setAttribute("data-end", data.offset);
        if (timestamps) applyTimestamps();
        if (atBottom) window.scrollTo(0, document.documentElement.scrollHeight);
      });
      source.addEventListener("end", function () {
        source.close();
        var f = $("log-following");
        if (f) f.textContent = "Step finished.";
        fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); })
          .then(function (text) {
            var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("step-status");
            var old = $("step-status");
            if (fresh && old) old.replaceWith(document.importNode(fresh, true));
          });
      });
    }

    window.addEventListener("hashchange", showHash);
    showHash();
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveRefresh();
    logViewer();
  });
})();
