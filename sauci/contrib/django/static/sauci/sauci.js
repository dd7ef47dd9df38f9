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

  /* Sections across ranges: the server marks a section still open at the end
     of a range (details[data-open]) and an end marker whose start came in an
     earlier range (.ln[data-end]); joining ranges moves the lines between
     into the open section, so a section spans any number of fetches. */
  function openChain(details) {
    var chain = [details];
    for (var last = details.lastElementChild; last && last.matches("details[data-open]"); last = last.lastElementChild)
      chain.push(last);
    return chain;
  }
  function tailChain(container) {
    var blk = container.lastElementChild;
    var last = blk && blk.lastElementChild;
    return last && last.matches("details[data-open]") ? openChain(last) : [];
  }
  function joinSections(stack, nodes) {
    for (var i = 0; i < nodes.length && stack.length; i++) {
      var node = nodes[i], top = stack[stack.length - 1];
      top.appendChild(node);
      if (node.nodeType !== 1) continue;
      if (node.hasAttribute("data-end")) {
        node.removeAttribute("data-end");
        top.removeAttribute("data-open");
        stack.pop();
      } else if (node.matches("details[data-open]")) {
        openChain(node).forEach(function (d) { stack.push(d); });
      }
    }
  }
  function dropEmpty(container) {
    Array.prototype.slice.call(container.children).forEach(function (blk) {
      if (!blk.firstChild) blk.remove();
    });
  }
  function appendRange(lines, html) {
    var stack = tailChain(lines), tmp = document.createElement("div");
    tmp.innerHTML = html;
    Array.prototype.slice.call(tmp.children).forEach(function (blk) {
      if (stack.length) joinSections(stack, Array.prototype.slice.call(blk.childNodes));
      if (blk.firstChild) lines.appendChild(blk);
    });
  }
  function prependRange(lines, html) {
    var tmp = document.createElement("div");
    tmp.innerHTML = html;
    var stack = tailChain(tmp), blks = Array.prototype.slice.call(lines.children);
    for (var i = 0; i < blks.length && stack.length; i++)
      joinSections(stack, Array.prototype.slice.call(blks[i].childNodes));
    dropEmpty(lines);
    var frag = document.createDocumentFragment();
    while (tmp.firstChild) frag.appendChild(tmp.firstChild);
    lines.insertBefore(frag, lines.firstChild);
  }

  function logViewer() {
    var log = $("log");
    if (!log) return;
    var lines = $("log-lines");
    var start = parseInt(log.getAttribute("data-start"), 10);
    var timestamps = null;

    /* Earlier parts, one range at a time. */
    var earlier = $("log-earlier");
    function loadedEarlier(data) {
      prependRange(lines, data.html);
      start = data.start;
      if (timestamps) applyTimestamps();
      if (earlier) {
        if (start <= 0) { earlier.remove(); earlier = null; }
        else { earlier.disabled = false; earlier.textContent = "Load earlier (" + Math.round(start / 1024) + " KiB before)"; }
      }
      runSearch(false);
    }
    if (earlier) earlier.addEventListener("click", function () {
      earlier.disabled = true;
      fetch(log.getAttribute("data-range-url") + "?end=" + start, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var y = document.documentElement.scrollHeight - window.scrollY;
          loadedEarlier(data);
          window.scrollTo(0, document.documentElement.scrollHeight - y);
        })
        .catch(function () { if (earlier) earlier.disabled = false; });
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
      clearTimeout(rpending); rpending = setTimeout(function () { serverSearch(search.value, 0); }, 400);
    });
    search.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); move(e.shiftKey ? -1 : 1); }
      if (e.key === "Escape") { search.value = ""; runSearch(false); serverSearch("", 0); }
    });
    /* Search in the whole log, on the server: matching lines listed; a click
       loads the range up to the line if needed and jumps to it. */
    var results = $("log-results"), rlist = $("log-results-list"), rstatus = $("log-results-status");
    var rmore = $("log-results-more"), rq = "", rnext = null, rcount = 0, rpending = null;
    function serverSearch(q, after) {
      rq = q;
      if (!after) { rlist.textContent = ""; rcount = 0; }
      rmore.hidden = true;
      if (!q) { results.hidden = true; return; }
      results.hidden = false;
      rstatus.textContent = "Searching the whole log…";
      fetch(log.getAttribute("data-search-url") + "?" + new URLSearchParams({ q: q, after: after }), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (data) {
          if (q !== rq) return;  /* a newer search is under way */
          data.matches.forEach(function (m) {
            var li = document.createElement("li"), a = document.createElement("a");
            a.href = "#L" + m.line;
            a.setAttribute("data-o", m.offset);
            a.setAttribute("data-line", m.line);
            a.innerHTML = '<span class="rn">' + m.line + "</span>" + m.html;  /* escaped by the server */
            li.appendChild(a);
            rlist.appendChild(li);
          });
          rcount += data.matches.length;
          rnext = data.next;
          var more = rnext !== null && rnext !== undefined;
          rstatus.textContent = rcount ? rcount + " matching lines in the whole log" + (more ? " so far" : "")
            : (more ? "no match yet" : "no match in the whole log");
          rmore.hidden = !more;
        })
        .catch(function () { if (q === rq) rstatus.textContent = "The search failed."; });
    }
    rmore.addEventListener("click", function () { serverSearch(rq, rnext); });
    $("log-find-all").addEventListener("click", function () { serverSearch(search.value, 0); });
    /* ?q= (the tests page's "log lines" link): search the whole log at once */
    var asked = new URLSearchParams(location.search).get("q");
    if (asked) { search.value = asked; serverSearch(asked, 0); }
    function goLine(n) {
      if (location.hash === "#L" + n) showHash(); else location.hash = "#L" + n;
    }
    /* Show line n at byte offset o, loading from it first when it is before the loaded part. */
    function jumpTo(o, n, status, go) {
      if (o >= start) { go(n); return; }
      status.textContent = "Loading line " + n + "…";
      fetch(log.getAttribute("data-range-url") + "?" + new URLSearchParams({ end: start, start: o }), { credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (d) { if (!r.ok) throw new Error(d.error || r.status); return d; }); })
        .then(function (data) { loadedEarlier(data); status.textContent = "Line " + n + "."; go(n); })
        .catch(function (err) { status.textContent = "Line " + n + ": " + err.message + "; use Load earlier."; });
    }
    rlist.addEventListener("click", function (e) {
      var a = e.target.closest("a[data-line]");
      if (!a) return;
      e.preventDefault();
      jumpTo(parseInt(a.getAttribute("data-o"), 10), a.getAttribute("data-line"), rstatus, goLine);
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
        t.title = d.toString();  /* the full date and zone on hover */
        t.textContent = pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) + "." + pad(d.getMilliseconds(), 3);
        row.insertBefore(t, row.querySelector(".tx"));
      });
    }
    $("log-ts").addEventListener("change", function (e) {
      if (!e.target.checked) { timestamps = null; applyTimestamps(); return; }
      fetch(log.getAttribute("data-ts-url") + "?start=0", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.available === false) {
            e.target.checked = false; e.target.disabled = true;
            var note = document.createElement("span");
            note.className = "note"; note.textContent = "timestamps unavailable for this log";
            e.target.parentNode.after(note);
            return;
          }
          timestamps = data.timestamps; applyTimestamps();
        });
    });

    /* Live follow of a running step. */
    var streamUrl = log.getAttribute("data-stream-url");
    if (streamUrl && window.EventSource) {
      var source = new EventSource(streamUrl + "?offset=" + log.getAttribute("data-end"));
      source.addEventListener("lines", function (e) {
        var data = JSON.parse(e.data);
        var atBottom = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
        appendRange(lines, data.html);
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
    /* Without an anchor: a failed step opens at its first error line, a
       running one (or a failed one without an error line) at its last lines. */
    if (!/^#L\d+$/.test(location.hash)) {
      var errLine = log.getAttribute("data-error-line");
      if (errLine) {
        jumpTo(parseInt(log.getAttribute("data-error-offset"), 10), errLine, count, function (n) {
          history.replaceState(null, "", "#L" + n);
          var el = document.getElementById("L" + n);
          if (el) el.classList.add("first-error");
          showHash();
        });
      } else if (log.hasAttribute("data-open-tail")) {
        window.scrollTo(0, document.documentElement.scrollHeight);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveRefresh();
    logViewer();
  });
})();
