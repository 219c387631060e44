// The dashboard's live updates: pages re-read their part of the database
// when the bus says a record arrived (Server-Sent Events from /api/live),
// and poll as a fallback. Everything from the database arrives as HTML
// rendered and escaped by the server, or is set as text.
(function () {
  "use strict";
  const $ = (sel, el) => (el || document).querySelector(sel);
  const debounce = (fn, ms) => { let t; return () => { clearTimeout(t); t = setTimeout(fn, ms); }; };

  function live(url, onRecord, onHello) {
    if (!window.EventSource) return;
    const es = new EventSource(url);
    es.addEventListener("record", (e) => onRecord(JSON.parse(e.data)));
    es.addEventListener("hello", (e) => onHello && onHello(JSON.parse(e.data)));
    es.onerror = () => onHello && onHello({ live: false, error: true });
  }

  async function fetchText(url) {
    const r = await fetch(url, { cache: "no-store" });
    return r.ok ? r.text() : null;
  }

  // Runs page: the rows follow the database; ticked boxes stay ticked.
  const rows = $("#runrows");
  if (rows) {
    const refresh = debounce(async () => {
      const ticked = new Set(Array.from(rows.querySelectorAll("input:checked"), (i) => i.value));
      const html = await fetchText("/fragment/runs" + location.search);
      if (html === null) return;
      rows.innerHTML = html;
      rows.querySelectorAll("input[name=id]").forEach((i) => { i.checked = ticked.has(i.value); });
    }, 250);
    live("/api/live", (rec) => {
      if (rec.record === "started" || rec.record === "iteration" || rec.record === "completed") refresh();
    });
    setInterval(refresh, 10000);
  }

  // Run page: tables, status and chart follow the run while it is live.
  const detail = $("#rundetail");
  if (detail) {
    const id = detail.dataset.run;
    const chart = $("#chart");
    const status = $("#status");
    const refresh = debounce(async () => {
      const html = await fetchText("/fragment/runs/" + encodeURIComponent(id));
      if (html === null) return;
      detail.innerHTML = html;
      const inner = $("#detail-inner", detail);
      const n = inner.dataset.iterations;
      if (n !== chart.dataset.iterations && Number(n) > 0) {
        chart.src = "/api/chart.svg?id=" + encodeURIComponent(id) + "&v=" + n;
        chart.dataset.iterations = n;
        chart.hidden = false;
      }
      status.textContent = inner.dataset.badge;
      status.className = "badge " + inner.dataset.badge;
    }, 150);
    live("/api/live?experiment=" + encodeURIComponent(id), refresh);
    setInterval(() => { if (status.textContent === "running" || status.textContent === "lost") refresh(); }, 5000);
  }

  // Live feed: newest first, 500 rows at most.
  const feed = $("#feed");
  if (feed) {
    const state = $("#feed-status");
    live("/api/live", (rec) => {
      const tr = document.createElement("tr");
      for (const v of [rec.time.slice(0, 19).replace("T", " "), rec.experiment_id, rec.kind, rec.summary]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      }
      feed.prepend(tr);
      while (feed.children.length > 500) feed.lastChild.remove();
    }, (h) => {
      state.textContent = h.live ? "Connected to the bus: records appear as runners publish them."
        : "Not connected to a bus: no persister holds this database (or it stopped).";
    });
  }
})();
