/* labelwise admin page: who labels how much and how well, the pool's progress, stop or resume an annotator, add one.
   The admin token comes from the link (#token=…) and goes in an Authorization header. */
"use strict";

(() => {
  const { $, toast, el, num, errorText, since } = window.labelwise;
  const { token, api } = window.labelwise.connect("labelwise.admin_token"); // not the annotator's key: both links can be open at once
  const REFRESH_MS = 3000;

  function showError(text) {
    $("admin-error").textContent = text;
    $("admin-error").hidden = !text;
  }

  const pct = (v) => (num(v) === null ? "–" : `${Math.round(v * 100)}%`);
  const count = (v) => (num(v) === null ? "–" : String(v));
  const secs = (v) => (num(v) === null ? "–" : v < 10 ? v.toFixed(1) : String(Math.round(v)));

  // ---------- pool ----------

  function renderPool(stats) {
    const pool = stats.pool || {};
    const people = (stats.annotators || []).filter((a) => !a.is_admin);
    const active = people.filter((a) => a.status === "active").length;
    const items = [
      [`${count(pool.tasks_done)} / ${count(pool.tasks_total)}`, "images done"],
      [`${count(pool.answers)} / ${count(pool.needed)}`, "answers of those needed"],
      [count(stats.leases_live), "held by annotators now"],
      [`${active} / ${people.length}`, "annotators active"],
    ];
    if (num(stats.overlap_raised)) items.push([count(stats.overlap_raised), "times overlap was raised"]);
    $("pool-stats").replaceChildren(
      ...items.map(([value, name]) =>
        el("div", { class: "stat" }, el("div", { class: "stat-value", text: value }), el("div", { class: "stat-name", text: name })),
      ),
    );
    const share = num(pool.needed) ? (pool.answers || 0) / pool.needed : 0;
    const bar = $("pool-bar");
    bar.querySelector(".fill").style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(share * 100)));
    bar.setAttribute("aria-valuetext", `${count(pool.answers)} of ${count(pool.needed)} answers`);
  }

  // ---------- annotators ----------

  const stopArmed = new Map(); // name -> timeout id: the first click arms, the second stops

  function stopButton(name) {
    const button = el("button", { type: "button", class: "btn danger", text: "Stop" });
    button.setAttribute("aria-label", `Stop ${name}`);
    if (stopArmed.has(name)) {
      button.classList.add("confirming");
      button.textContent = "Really stop?";
    }
    button.addEventListener("click", async () => {
      if (!stopArmed.has(name)) {
        stopArmed.set(
          name,
          setTimeout(() => {
            stopArmed.delete(name);
            refresh();
          }, 4000),
        );
        button.classList.add("confirming");
        button.textContent = "Really stop?";
        return;
      }
      clearTimeout(stopArmed.get(name));
      stopArmed.delete(name);
      button.disabled = true;
      const res = await api("/api/admin/stop", { name });
      if (res.ok) toast(`${name} is stopped; their answers no longer count.`, "ok");
      else toast(errorText(res), "bad", 6000);
      refresh();
    });
    return button;
  }

  // only the admin's own stops: the exam and the gold check are the project's settings
  function resumeButton(name) {
    const button = el("button", { type: "button", class: "btn", text: "Resume" });
    button.setAttribute("aria-label", `Resume ${name}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      const res = await api("/api/admin/resume", { name });
      if (res.ok) toast(`${name} can label again; their answers count again.`, "ok");
      else toast(errorText(res), "bad", 6000);
      refresh();
    });
    return button;
  }

  function actionFor(a, status) {
    if (status === "active") return stopButton(a.name);
    return a.stopped_by === "admin" ? resumeButton(a.name) : "";
  }

  function ago(at) {
    if (num(at) === null) return "–";
    const s = Math.max(0, Date.now() / 1000 - at);
    if (s < 86400) return since(s);
    return new Date(at * 1000).toLocaleDateString();
  }

  function renderPeople(people) {
    const body = $("people-body");
    const rows = people.filter((a) => !a.is_admin);
    if (!rows.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "10", class: "muted", text: "No annotators yet: add one below." })));
      return;
    }
    // a refresh rebuilds the rows: keep the keyboard focus on the same button
    const focused = document.activeElement && document.activeElement.closest("#people-body") ? document.activeElement.getAttribute("aria-label") : null;
    body.replaceChildren(
      ...rows.map((a) => {
        const status = a.status || "active";
        const pill = el("span", { class: "status-pill", "data-status": status, text: status });
        const statusCell = el("td", { class: "status-cell" }, pill);
        if (a.status_reason && status !== "active") statusCell.append(el("span", { class: "status-reason", text: a.status_reason }));
        const gold = el("td", { class: "num", text: num(a.honeypot_accuracy) === null ? "–" : `${pct(a.honeypot_accuracy)} of ${a.honeypots}` });
        return el(
          "tr",
          { "data-name": a.name, "data-status": status },
          el("th", { scope: "row", text: a.name }),
          statusCell,
          el("td", { class: "num", text: count(a.answers) }),
          el("td", { class: "num", text: count(a.skipped) }),
          gold,
          el("td", { class: "num", text: pct(a.exam_accuracy) }),
          el("td", { class: "num", text: pct(a.agreement) }),
          el("td", { class: "num", text: secs(a.mean_seconds) }),
          el("td", { class: "muted", text: ago(a.last_answer_at) }),
          el("td", {}, actionFor(a, status)),
        );
      }),
    );
    if (focused) {
      const again = body.querySelector(`[aria-label="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  // ---------- refresh ----------

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      const res = await api("/api/admin/stats");
      if (res.status === 401 || res.status === 403) {
        showError(res.status === 401 ? "This page needs the admin's private link (it ends with #token=…)." : "This link is an annotator's, not the admin's.");
        document.body.classList.add("no-access");
        return; // no point in retrying with this token
      }
      if (!res.ok) throw new Error(errorText(res));
      const stats = res.data || {};
      showError("");
      renderPool(stats);
      renderPeople(stats.annotators || []);
      $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      showError(`Cannot reach the labeling server (${err.message || err}); trying again.`);
    }
    timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 5 : REFRESH_MS);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !document.body.classList.contains("no-access")) refresh();
  });

  // ---------- add an annotator ----------

  $("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("add-name").value.trim();
    if (!name) {
      toast("Type a name first.", "info");
      $("add-name").focus();
      return;
    }
    $("add-submit").disabled = true;
    try {
      const res = await api("/api/admin/annotators", { name });
      if (!res.ok) {
        toast(errorText(res), "bad", 6000);
        return;
      }
      const link = res.data.link || `${location.origin}/#token=${encodeURIComponent(res.data.token)}`;
      $("new-link-name").textContent = name;
      $("new-link-url").textContent = link;
      $("new-link").hidden = false;
      $("add-name").value = "";
      refresh();
    } finally {
      $("add-submit").disabled = false;
    }
  });

  $("new-link-copy").addEventListener("click", async () => {
    const link = $("new-link-url").textContent;
    try {
      await navigator.clipboard.writeText(link);
      toast("Link copied.", "ok", 2000);
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("new-link-url"));
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      toast("Press Ctrl+C to copy the selected link.", "info");
    }
  });

  if (!token) {
    showError("This page needs the admin's private link (it ends with #token=…).");
    document.body.classList.add("no-access");
  } else {
    refresh();
  }
})();
