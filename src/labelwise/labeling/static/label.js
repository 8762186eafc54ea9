/* labelwise annotator page: one image at a time or a grid page, keyboard first.
   Talks to the JSON API with the token from the link (#token=…) in an Authorization header;
   images come through fetch() as blob URLs, so no token ever appears in a URL. */
"use strict";

(() => {
  const { $, toast, el, num, errorText, since, NetworkError } = window.labelwise;
  const http = window.labelwise.connect("labelwise.token"); // not the admin's key: both links can be open at once
  const { api } = http;
  const MAX_CACHED_IMAGES = 120;

  const state = {
    me: null,
    classes: [],
    mode: "single",
    task: null, // the task the server leased to us
    shown: null, // what the single view shows: the leased task or an earlier answer being edited
    selected: null, // index into classes
    editIndex: -1, // position in history of the answer being edited, -1 when none
    history: [],
    awaitingContinue: false, // training feedback on screen
    busy: false,
    imageReady: false,
    grid: null, // {label, tasks, rejected: Set of task ids}
    gridBusy: false,
    pollTimer: null,
  };

  // ---------- HTTP ----------

  /** api() that keeps trying while the server cannot be reached (a restart, a flaky network). */
  async function apiPatient(path, body) {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await api(path, body);
        if (attempt > 0) toast("Connected again.", "ok");
        return res;
      } catch (err) {
        if (!(err instanceof NetworkError)) throw err;
        toast("Cannot reach the labeling server — trying again…", "bad", 0);
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** attempt, 10000)));
      }
    }
  }

  // ---------- images (fetched with the header, shown as blob URLs) ----------

  const imageCache = new Map(); // task id -> Promise<blob URL>

  function imageUrl(taskId) {
    let url = imageCache.get(taskId);
    if (url) {
      imageCache.delete(taskId); // re-insert: most recently used last
      imageCache.set(taskId, url);
      return url;
    }
    url = http.fetchWithToken(`/api/image/${encodeURIComponent(taskId)}`).then(async (res) => {
      if (!res.ok) throw new Error(`image ${taskId}: ${res.status}`);
      return URL.createObjectURL(await res.blob());
    });
    url.catch(() => imageCache.delete(taskId));
    imageCache.set(taskId, url);
    while (imageCache.size > MAX_CACHED_IMAGES) {
      const [oldest, promise] = imageCache.entries().next().value;
      imageCache.delete(oldest);
      promise.then((u) => URL.revokeObjectURL(u), () => {});
    }
    return url;
  }

  // ---------- time spent (only while the page is visible) ----------

  class Timer {
    constructor() {
      this.total = 0;
      this.since = null;
    }
    reset() {
      this.total = 0;
      this.since = document.hidden ? null : performance.now();
    }
    pause() {
      if (this.since !== null) this.total += performance.now() - this.since;
      this.since = null;
    }
    resume() {
      if (this.since === null && !document.hidden) this.since = performance.now();
    }
    seconds() {
      const ms = this.total + (this.since === null ? 0 : performance.now() - this.since);
      return Math.round(ms / 100) / 10;
    }
  }
  const taskTimer = new Timer();
  const editTimer = new Timer();
  const gridTimer = new Timer();

  function activeTimer() {
    if (state.mode === "grid") return gridTimer;
    return state.shown && state.shown.edit ? editTimer : taskTimer;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) [taskTimer, editTimer, gridTimer].forEach((t) => t.pause());
    else activeTimer().resume();
  });

  // ---------- small UI helpers ----------

  function showView(name) {
    for (const id of ["single-view", "grid-view", "message-view"]) $(id).hidden = id !== name;
  }

  function keyName(index) {
    if (index < 9) return String(index + 1);
    if (index === 9) return "0";
    if (index < 20) return `⇧${index === 19 ? 0 : index - 9}`;
    return "";
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function ago(at) {
    if (typeof at !== "number") return "";
    return since(Math.max(0, Date.now() / 1000 + http.clockSkew - at));
  }

  // ---------- progress ----------

  function setMeter(id, done, total, text) {
    const meter = $(id);
    const bar = meter.querySelector(".bar");
    const share = total ? Math.max(0, Math.min(1, done / total)) : 0;
    meter.querySelector(".fill").style.width = `${(share * 100).toFixed(1)}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(share * 100)));
    bar.setAttribute("aria-valuetext", text);
    meter.querySelector(".meter-text").textContent = text;
  }

  function updateProgress(progress) {
    if (!progress) return;
    state.progress = progress;
    const stage = progress.stage || "task";
    const gate = progress[stage]; // {done, total} while in training or the exam
    const mine = $("meter-mine");
    if (stage !== "task" && gate && num(gate.total)) {
      mine.classList.remove("count-only");
      setMeter("meter-mine", gate.done || 0, gate.total, `${stage} ${gate.done || 0}/${gate.total}`);
    } else {
      mine.classList.add("count-only"); // how many I could still answer depends on the others: a count, no bar
      setMeter("meter-mine", 0, 0, plural(num(progress.answered) ?? 0, "answer"));
    }
    const pool = progress.pool || {};
    const total = num(pool.tasks_total);
    if (total !== null) {
      // the bar moves with every answer, the text counts finished images
      setMeter("meter-pool", num(pool.answers) ?? 0, num(pool.needed) || total, `${num(pool.tasks_done) ?? 0}/${total} images`);
    }
    renderWho();
  }

  function renderWho() {
    if (!state.me) return;
    const stage = state.progress && state.progress.stage;
    const stageText = { training: "training", exam: "exam" }[stage];
    $("who").textContent = stageText ? `${state.me.name} · ${stageText}` : state.me.name;
  }

  // ---------- classes ----------

  function buildClasses() {
    const box = $("classes");
    box.replaceChildren();
    box.classList.toggle("many", state.classes.length > 8);
    state.classes.forEach((name, i) => {
      const key = keyName(i);
      const button = el(
        "button",
        { type: "button", class: "class-btn", "aria-pressed": "false", "data-index": String(i) },
        el("kbd", { text: key, "aria-hidden": "true" }),
        el("span", { class: "class-name", text: name }),
        el("span", { class: "tags" }),
      );
      button.setAttribute("aria-label", key ? `${name} (key ${key.replace("⇧", "shift ")})` : name);
      button.addEventListener("click", () => select(i));
      button.addEventListener("dblclick", () => submitSelected());
      box.append(button);
    });
    const gridClass = $("grid-class");
    gridClass.replaceChildren(el("option", { value: "", text: "any" }));
    for (const name of state.classes) gridClass.append(el("option", { value: name, text: name }));
  }

  function select(index) {
    if (index === null || index < 0 || index >= state.classes.length || !state.shown) return;
    if (state.awaitingContinue) return;
    state.selected = index;
    renderSelection();
  }

  function renderSelection() {
    for (const button of $("classes").children) {
      const on = Number(button.dataset.index) === state.selected;
      button.setAttribute("aria-pressed", on ? "true" : "false");
    }
    $("submit").disabled = state.selected === null || state.busy || !state.imageReady || state.awaitingContinue;
  }

  function renderTags(view) {
    for (const button of $("classes").children) {
      const name = state.classes[Number(button.dataset.index)];
      const tags = button.querySelector(".tags");
      tags.replaceChildren();
      if (view.given_label === name) tags.append(el("span", { class: "tag given", text: "dataset" }));
      if (view.suggestion === name) tags.append(el("span", { class: "tag model", text: "model" }));
      if (view.edit && view.edit.kind === "label" && view.edit.label === name)
        tags.append(el("span", { class: "tag yours", text: "yours" }));
    }
  }

  // ---------- the single view ----------

  const STAGE_BADGE = { training: "Training", exam: "Exam" };

  function showTask(view, { resume = false } = {}) {
    state.shown = view;
    state.awaitingContinue = false;
    state.selected = null;
    showView("single-view");
    $("feedback").hidden = true;
    $("classes").classList.remove("locked");

    const edit = view.edit || null;
    const review = !!view.given_label;
    const badge = $("stage-badge");
    badge.textContent = edit ? "Editing" : STAGE_BADGE[view.stage] || (review ? "Review" : "Task");
    badge.dataset.stage = edit ? "edit" : view.stage || "task";
    $("task-ref").textContent = `#${view.task_id}`;

    $("editing-banner").hidden = !edit;
    if (edit) {
      const was = edit.kind === "label" ? edit.label : { skip: "skipped", unsure: "not sure", not: `not ${edit.label}` }[edit.kind];
      $("editing-text").textContent = `Editing answer ${state.editIndex + 1} back (was: ${was || edit.kind}${edit.at ? `, ${ago(edit.at)}` : ""})`;
    }

    const note = $("stage-note");
    const pass = state.me && state.me.settings && num(state.me.settings.exam_pass);
    if (!edit && view.stage === "training") {
      note.textContent = "Training: after each answer you see the right one, with a hint.";
      note.hidden = false;
    } else if (!edit && view.stage === "exam") {
      note.textContent = `Exam: no feedback here.${pass ? ` ${Math.round(pass * 100)}% right opens the real tasks.` : ""}`;
      note.hidden = false;
    } else {
      note.hidden = true;
    }

    $("review-box").hidden = !review;
    if (review) {
      $("given-label").textContent = view.given_label;
      $("review-suggestion-row").hidden = !view.suggestion;
      $("review-suggestion").textContent = view.suggestion || "";
    }

    const answer = edit || view.answer || null;
    if (answer && answer.kind === "label") state.selected = state.classes.indexOf(answer.label);
    else if (!answer && view.suggestion) state.selected = state.classes.indexOf(view.suggestion);
    if (state.selected === -1) state.selected = null;
    $("suggestion-note").hidden = !(view.suggestion && !answer && !review && state.selected !== null);

    renderTags(view);
    renderSelection();
    renderLease();
    if (edit) editTimer.reset();
    else if (!resume) taskTimer.reset();
    else taskTimer.resume();
    loadImage(view.task_id);
  }

  let imageRequest = 0;
  function loadImage(taskId) {
    const request = ++imageRequest;
    const img = $("image");
    const status = $("image-status");
    state.imageReady = false;
    renderSelection();
    img.classList.remove("ready");
    status.textContent = "Loading…";
    status.hidden = false;
    img.alt = `Image of task ${taskId}`;
    imageUrl(taskId).then(
      (url) => {
        if (request !== imageRequest) return;
        img.onload = () => {
          if (request !== imageRequest) return;
          status.hidden = true;
          img.classList.add("ready");
          state.imageReady = true;
          zoom.fit();
          renderSelection();
        };
        img.onerror = () => imageFailed(request);
        img.src = url;
      },
      () => imageFailed(request),
    );
  }

  function imageFailed(request) {
    if (request !== imageRequest) return;
    $("image-status").textContent = "This image could not be loaded. Skip it (s) or mark it not sure (u).";
    $("image-status").hidden = false;
  }

  function renderLease() {
    const lease = $("lease");
    const view = state.shown;
    if (!view || view.edit || typeof view.lease_expires !== "number") {
      lease.textContent = "";
      return;
    }
    const left = view.lease_expires - (Date.now() / 1000 + http.clockSkew);
    lease.classList.toggle("late", left < 20);
    if (left > 60) lease.textContent = "";
    else if (left > 0) lease.textContent = `held for you ${Math.ceil(left)} s more`;
    else lease.textContent = "hold expired — answer anyway if you can";
  }
  setInterval(renderLease, 1000);

  function setBusy(busy) {
    state.busy = busy;
    document.body.classList.toggle("busy", busy);
    for (const id of ["skip", "unsure", "confirm-given"]) $(id).disabled = busy;
    renderSelection();
  }

  function answerText(kind, label) {
    if (kind === "label") return label;
    return { skip: "skipped", unsure: "not sure" }[kind] || kind;
  }

  async function answer(kind, label) {
    const view = state.shown;
    if (state.busy || !view || state.awaitingContinue) return;
    if (kind === "label" && !state.imageReady) {
      toast("The image is still loading.", "info", 1500);
      return;
    }
    const editing = !!view.edit;
    const body = { task_id: view.task_id, kind, seconds: (editing ? editTimer : taskTimer).seconds() };
    if (label !== undefined && label !== null) body.label = label;
    setBusy(true);
    let res;
    try {
      res = await api("/api/answer", body);
    } catch (err) {
      setBusy(false);
      if (!(err instanceof NetworkError)) throw err;
      toast("Cannot reach the server: this answer is not saved yet. Press Enter to try again.", "bad", 6000);
      return;
    }
    setBusy(false);
    if (res.status === 401) return noAccess();
    if (res.status === 403) return loadNext(); // stopped (by the admin, the exam or gold accuracy): next says why
    if (res.status === 409 || (res.ok && res.data && res.data.accepted === false)) {
      if (editing) {
        toast(`That answer can no longer be changed (${errorText(res)}).`, "warn", 5000);
        return leaveEdit();
      }
      toast("Your hold on that image expired and others have covered it — here is the next one.", "warn", 5000);
      return loadNext();
    }
    if (!res.ok) {
      toast(errorText(res), "bad", 6000);
      return;
    }
    const data = res.data || {};
    updateProgress(data.progress);
    $("last-saved").textContent = `✓ #${view.task_id} ${editing ? "changed to" : "saved as"} ${answerText(kind, label)}`;
    refreshHistory();
    if (editing) return leaveEdit();
    const feedback = data.feedback || {};
    if (feedback.exam && feedback.exam.passed) {
      toast(`Exam passed (${Math.round((feedback.exam.accuracy || 0) * 100)}% right): on to the real tasks.`, "ok", 5000);
    }
    if (view.stage === "training" && data.feedback) return showFeedback(feedback, kind, label, view);
    return loadNext();
  }

  function submitSelected() {
    if (state.awaitingContinue) return continueAfterFeedback();
    if (state.selected === null) {
      toast("Pick a class first: press its number or click it.", "info", 2500);
      return;
    }
    answer("label", state.classes[state.selected]);
  }

  function showFeedback(feedback, kind, label, view) {
    const correctLabel = feedback.correct_label ?? feedback.gold_label ?? feedback.label ?? null;
    const right = typeof feedback.correct === "boolean" ? feedback.correct : kind === "label" && label === correctLabel;
    const hint = feedback.hint ?? view.hint ?? "";
    const box = $("feedback");
    box.dataset.result = right ? "right" : "wrong";
    $("feedback-title").textContent = right
      ? `Right: ${correctLabel ?? label}.`
      : `The answer is ${correctLabel ?? "another class"}${kind === "label" ? ` (you said ${label})` : ""}.`;
    $("feedback-hint").textContent = hint;
    $("feedback-hint").hidden = !hint;
    box.hidden = false;
    state.awaitingContinue = true;
    $("classes").classList.add("locked");
    for (const button of $("classes").children) {
      const name = state.classes[Number(button.dataset.index)];
      button.classList.toggle("correct", name === correctLabel);
    }
    renderSelection();
    $("feedback-continue").focus();
  }

  function continueAfterFeedback() {
    state.awaitingContinue = false;
    for (const button of $("classes").children) button.classList.remove("correct");
    loadNext();
  }

  async function loadNext() {
    stopPolling();
    state.editIndex = -1;
    setBusy(true);
    let res;
    try {
      res = await apiPatient("/api/next", {});
    } finally {
      setBusy(false);
    }
    if (res.status === 401) return noAccess();
    if (res.status === 403) return showDone(errorText(res), { status: "stopped" });
    if (!res.ok) return showProblem(errorText(res));
    const data = res.data || {};
    updateProgress(data.progress);
    const task = data.task || null;
    const same = !!(task && state.task && state.task.task_id === task.task_id);
    state.task = task;
    if (!task) return showDone(data.done_reason, data.progress);
    if (state.mode === "single") {
      showTask(task, { resume: same });
      releaseFocus();
    }
  }

  function releaseFocus() {
    // so that Enter submits rather than activating whichever button was clicked last
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  }

  // ---------- undo / edit the last answers ----------

  async function fetchHistory() {
    try {
      const res = await api("/api/history");
      if (res.ok) {
        const list = Array.isArray(res.data) ? res.data : (res.data && (res.data.answers || res.data.history)) || [];
        state.history = list;
        renderHistory();
      }
    } catch {
      /* the list is a convenience; undo reports the failure */
    }
    return state.history;
  }

  function refreshHistory() {
    if ($("history").open) fetchHistory();
  }

  function renderHistory() {
    const list = $("history-list");
    list.replaceChildren();
    if (!state.history.length) {
      list.append(el("li", { class: "muted small", text: "No answers yet." }));
      return;
    }
    state.history.forEach((a, i) => {
      const button = el(
        "button",
        { type: "button", class: "history-item" },
        el("span", { class: "history-task", text: `#${a.task_id}` }),
        el("span", { class: "history-answer", text: a.kind === "not" ? `not ${a.label}` : answerText(a.kind, a.label) }),
        el("span", { class: "history-at muted", text: ago(a.at) }),
      );
      button.setAttribute("aria-label", `Edit your answer to task ${a.task_id}: ${answerText(a.kind, a.label)}`);
      button.addEventListener("click", () => openEdit(i));
      list.append(el("li", {}, button));
    });
  }

  async function undo() {
    if (state.busy || state.gridBusy) return;
    const wanted = state.editIndex + 1;
    const list = await fetchHistory();
    if (!list.length) return toast("Nothing to undo yet.", "info", 2500);
    if (wanted >= list.length) return toast(`You can go back ${plural(list.length, "answer")}, no further.`, "info", 3000);
    openEdit(wanted);
  }

  function openEdit(index) {
    const answer = state.history[index];
    if (!answer) return;
    if (state.mode === "grid") setMode("single", { load: false });
    if (!(state.shown && state.shown.edit)) taskTimer.pause();
    stopPolling();
    state.editIndex = index;
    showTask({
      task_id: answer.task_id,
      stage: answer.stage || "task",
      // as the task showed them (the server leaves both out on gold tasks); the selection starts from the answer
      suggestion: answer.suggestion || null,
      given_label: answer.given_label || null,
      hint: null,
      edit: answer,
    });
    releaseFocus();
  }

  function leaveEdit() {
    state.editIndex = -1;
    loadNext(); // the held task again (its lease renewed), or the next one if a grid page answered it
  }

  // ---------- end screens ----------

  function showDone(reason, progress) {
    state.shown = null;
    state.task = null;
    const p = progress || state.progress || {};
    const why = String(p.status_reason || reason || "");
    let kind = "done";
    let icon = "✓";
    let title = "All done — thank you!";
    let body = `Every image has the answers it needs. You gave ${plural(num(p.answered) ?? 0, "answer")}; Backspace goes back to your last ones.`;
    if (p.status === "stopped" || p.state === "stopped" || /^stopped\b/i.test(String(reason || ""))) {
      kind = "stopped";
      if (why === "exam") {
        icon = "✕";
        title = "The exam was not passed";
        body = "Thank you for your time. Too few exam answers were right, so this link gives no more tasks. Ask the project's admin if you think that is a mistake.";
      } else {
        icon = "■";
        title = "You have been stopped";
        const shown = why && !/^stopped\b.*ask the admin/i.test(why) ? `Reason: ${why}. ` : "";
        body = `${shown}Your answers are kept. Ask the project's admin if you think that is a mistake.`;
      }
    } else if (p.state === "waiting") {
      kind = "waiting";
      icon = "…";
      title = "Nothing to hand out right now";
      body = "The images left are being labeled by others. If someone's hold expires, its image comes back: this page looks again every 20 seconds.";
    }
    $("message-icon").textContent = icon;
    $("message-view").dataset.kind = kind;
    $("message-title").textContent = title;
    $("message-text").textContent = body;
    $("message-action").textContent = "Look for new tasks";
    $("message-action").hidden = kind === "stopped";
    showView("message-view");
    if (kind !== "stopped") state.pollTimer = setTimeout(loadNext, kind === "waiting" ? 20000 : 60000);
  }

  function showProblem(text) {
    state.shown = null;
    $("message-icon").textContent = "!";
    $("message-view").dataset.kind = "stopped";
    $("message-title").textContent = "The server could not give you a task";
    $("message-text").textContent = `The server said: “${String(text).replace(/\.$/, "")}”. Your answers so far are saved. Try again in a moment; if it keeps failing, tell the project's admin.`;
    $("message-action").textContent = "Try again";
    $("message-action").hidden = false;
    showView("message-view");
  }

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  function noAccess(extra) {
    stopPolling();
    state.shown = null;
    $("message-icon").textContent = "🔒";
    $("message-view").dataset.kind = "stopped";
    $("message-title").textContent = "This page needs your private link";
    $("message-text").textContent =
      extra ||
      "Open the link you were given (it ends with #token=…). If you did, it is no longer valid: ask the project's admin for a new one.";
    $("message-action").hidden = true;
    showView("message-view");
    document.body.classList.add("no-access");
  }

  // ---------- zoom and pan ----------

  const zoom = (() => {
    const viewer = $("viewer");
    const img = $("image");
    const z = { scale: 1, x: 0, y: 0, fitted: true };
    const MAX = 64;

    function fitScale() {
      const w = img.naturalWidth || 1;
      const h = img.naturalHeight || 1;
      return Math.min(viewer.clientWidth / w, viewer.clientHeight / h);
    }

    function clamp() {
      const w = img.naturalWidth * z.scale;
      const h = img.naturalHeight * z.scale;
      const vw = viewer.clientWidth;
      const vh = viewer.clientHeight;
      z.x = w <= vw ? (vw - w) / 2 : Math.min(0, Math.max(vw - w, z.x));
      z.y = h <= vh ? (vh - h) / 2 : Math.min(0, Math.max(vh - h, z.y));
    }

    function apply() {
      clamp();
      img.style.transform = `translate(${z.x}px, ${z.y}px) scale(${z.scale})`;
      img.classList.toggle("pixelated", z.scale >= 3);
      viewer.classList.toggle("zoomed", !z.fitted);
      $("zoom-level").textContent = z.fitted ? "fit" : `${Math.round(z.scale * 100)}%`;
      $("zoom-toggle").setAttribute("aria-label", z.fitted ? "Show at 1:1 (f)" : "Fit to the viewer (f)");
    }

    function fit() {
      if (!img.naturalWidth) return;
      z.scale = fitScale();
      z.fitted = true;
      apply();
    }

    function zoomAt(factor, cx, cy) {
      if (!img.naturalWidth) return;
      const min = Math.min(fitScale(), 1);
      const scale = Math.max(min, Math.min(MAX, z.scale * factor));
      z.x = cx - ((cx - z.x) * scale) / z.scale;
      z.y = cy - ((cy - z.y) * scale) / z.scale;
      z.scale = scale;
      z.fitted = Math.abs(scale - fitScale()) < 1e-6;
      apply();
    }

    function center(factor) {
      zoomAt(factor, viewer.clientWidth / 2, viewer.clientHeight / 2);
    }

    function toggle(cx = viewer.clientWidth / 2, cy = viewer.clientHeight / 2) {
      if (!img.naturalWidth) return;
      if (z.fitted) {
        const target = Math.abs(fitScale() - 1) > 0.01 ? 1 : 2; // 1:1, or 2x when fit already is 1:1
        zoomAt(target / z.scale, cx, cy);
        z.fitted = false;
        apply();
      } else {
        fit();
      }
    }

    viewer.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        const rect = viewer.getBoundingClientRect();
        const delta = event.deltaMode === 1 ? event.deltaY * 32 : event.deltaY;
        zoomAt(Math.exp(-delta * 0.0015), event.clientX - rect.left, event.clientY - rect.top);
      },
      { passive: false },
    );

    let drag = null;
    viewer.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || event.target.closest(".zoom-controls")) return;
      drag = { id: event.pointerId, x: event.clientX, y: event.clientY, ox: z.x, oy: z.y, moved: false };
      viewer.setPointerCapture(event.pointerId);
    });
    viewer.addEventListener("pointermove", (event) => {
      if (!drag || event.pointerId !== drag.id) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true;
      viewer.classList.add("panning");
      z.x = drag.ox + dx;
      z.y = drag.oy + dy;
      apply();
    });
    const end = (event) => {
      if (!drag || event.pointerId !== drag.id) return;
      const wasClick = !drag.moved && event.type === "pointerup";
      drag = null;
      viewer.classList.remove("panning");
      if (wasClick) {
        const rect = viewer.getBoundingClientRect();
        toggle(event.clientX - rect.left, event.clientY - rect.top);
      }
    };
    viewer.addEventListener("pointerup", end);
    viewer.addEventListener("pointercancel", end);

    new ResizeObserver(() => (z.fitted ? fit() : apply())).observe(viewer);

    $("zoom-in").addEventListener("click", () => center(1.25));
    $("zoom-out").addEventListener("click", () => center(0.8));
    $("zoom-toggle").addEventListener("click", () => toggle());

    function pan(dx, dy) {
      if (z.fitted) return false;
      z.x += dx;
      z.y += dy;
      apply();
      return true;
    }

    return { fit, center, toggle, pan };
  })();

  // ---------- grid mode ----------

  function setMode(mode, { load = true } = {}) {
    if (mode === state.mode) return;
    state.mode = mode;
    $("mode-single").setAttribute("aria-pressed", mode === "single" ? "true" : "false");
    $("mode-grid").setAttribute("aria-pressed", mode === "grid" ? "true" : "false");
    document.body.dataset.mode = mode;
    if (mode === "grid") {
      taskTimer.pause();
      editTimer.pause();
      state.editIndex = -1;
      stopPolling();
      showView("grid-view");
      if (load) loadGridPage();
    } else {
      gridTimer.pause();
      if (load) loadNext(); // the grid page may have answered the task that was on screen

    }
  }

  async function loadGridPage() {
    state.gridBusy = true;
    renderGridCount();
    const body = $("grid-class").value ? { label: $("grid-class").value } : {};
    let res;
    try {
      res = await apiPatient("/api/grid/next", body);
    } finally {
      state.gridBusy = false;
    }
    if (state.mode !== "grid") return;
    if (res.status === 401) return noAccess();
    const data = (res.ok && res.data) || null;
    const tasks = (data && data.tasks) || [];
    if (!tasks.length) {
      state.grid = null;
      $("thumbs").replaceChildren();
      $("grid-label").textContent = $("grid-class").value || "…";
      const stage = state.progress && state.progress.stage;
      $("grid-empty-text").textContent =
        res.status === 403
          ? "You have been stopped: no more pages."
          : stage === "training" || stage === "exam"
            ? "Grid mode opens after the training and the exam: finish those one by one first."
            : !res.ok
              ? errorText(res)
              : `No grid page left${$("grid-class").value ? ` for ${$("grid-class").value}` : ""}: the images with a model guess are all answered or held by others.`;
      $("grid-empty").hidden = false;
      renderGridCount();
      return;
    }
    $("grid-empty").hidden = true;
    state.grid = { label: data.label, tasks, rejected: new Set() };
    $("grid-label").textContent = data.label;
    renderThumbs();
    gridTimer.reset();
    updateProgress(data.progress);
  }

  function renderThumbs() {
    const grid = state.grid;
    const box = $("thumbs");
    box.replaceChildren();
    grid.tasks.forEach((task, i) => {
      const img = el("img", { alt: "", draggable: "false" });
      const button = el(
        "button",
        { type: "button", class: "thumb loading", "aria-pressed": "false", "data-task": String(task.task_id) },
        img,
        el("span", { class: "thumb-mark", "aria-hidden": "true", "data-text": `not ${grid.label}` }),
        el("span", { class: "thumb-num", "aria-hidden": "true", text: String(i + 1) }),
      );
      button.setAttribute("aria-label", `Image ${i + 1} of ${grid.tasks.length}: ${grid.label}`);
      button.addEventListener("click", () => toggleThumb(button));
      box.append(button);
      imageUrl(task.task_id).then(
        (url) => {
          img.onload = () => button.classList.remove("loading");
          img.src = url;
        },
        () => {
          button.classList.remove("loading");
          button.classList.add("broken");
        },
      );
    });
    renderGridCount();
  }

  function toggleThumb(button) {
    const grid = state.grid;
    if (!grid || state.gridBusy) return;
    const id = Number(button.dataset.task);
    const on = !grid.rejected.has(id);
    if (on) grid.rejected.add(id);
    else grid.rejected.delete(id);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    const i = grid.tasks.findIndex((t) => t.task_id === id);
    button.setAttribute("aria-label", `Image ${i + 1} of ${grid.tasks.length}: ${on ? `not ${grid.label}` : grid.label}`);
    renderGridCount();
  }

  function renderGridCount() {
    const grid = state.grid;
    $("grid-submit").disabled = !grid || state.gridBusy;
    $("grid-count").textContent = grid
      ? `${grid.tasks.length - grid.rejected.size} ${grid.label} · ${grid.rejected.size} not`
      : "";
  }

  async function submitGrid() {
    const grid = state.grid;
    if (!grid || state.gridBusy) return;
    state.gridBusy = true;
    renderGridCount();
    const body = {
      label: grid.label,
      task_ids: grid.tasks.map((t) => t.task_id),
      rejected: [...grid.rejected],
      seconds: gridTimer.seconds(),
    };
    let res;
    try {
      res = await api("/api/grid/submit", body);
    } catch (err) {
      state.gridBusy = false;
      renderGridCount();
      if (!(err instanceof NetworkError)) throw err;
      toast("Cannot reach the server: this page is not saved yet. Press Enter to try again.", "bad", 6000);
      return;
    }
    state.gridBusy = false;
    if (res.status === 401) return noAccess();
    if (res.status === 409 || (res.ok && res.data && res.data.accepted === false)) {
      toast(`The page was not saved: ${errorText(res)}. Here is a fresh one.`, "warn", 6000);
      return loadGridPage();
    }
    if (!res.ok) {
      renderGridCount();
      toast(errorText(res), "bad", 6000);
      return;
    }
    updateProgress(res.data && res.data.progress);
    if (res.data && res.data.reason) toast(`Saved, except: ${res.data.reason}`, "warn", 6000);
    const kept = grid.tasks.length - grid.rejected.size;
    $("last-saved").textContent = `✓ page saved: ${kept} ${grid.label}, ${grid.rejected.size} not`;
    if (!(res.data && res.data.reason)) toast(`Page saved: ${kept} ${grid.label}, ${grid.rejected.size} not.`, "ok", 2500);
    refreshHistory();
    loadGridPage();
  }

  function moveThumbFocus(key) {
    const thumbs = [...$("thumbs").children];
    if (!thumbs.length) return;
    let i = thumbs.indexOf(document.activeElement);
    if (i === -1) {
      thumbs[0].focus();
      return;
    }
    const top = thumbs[0].offsetTop;
    const perRow = Math.max(1, thumbs.filter((t) => t.offsetTop === top).length);
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -perRow, ArrowDown: perRow }[key];
    i = Math.max(0, Math.min(thumbs.length - 1, i + step));
    thumbs[i].focus();
  }

  // ---------- help ----------

  let helpReturnFocus = null;
  function openHelp() {
    helpReturnFocus = document.activeElement;
    $("help").hidden = false;
    $("help-close").focus();
  }
  function closeHelp() {
    $("help").hidden = true;
    if (helpReturnFocus && helpReturnFocus.focus) helpReturnFocus.focus();
  }
  const helpOpen = () => !$("help").hidden;

  // ---------- keyboard ----------

  // Enter keeps its native meaning on these (a focused control the user chose), else it submits.
  const NATIVE_ENTER = "input, select, textarea, summary, .history-item, #edit-cancel, #help-close, #help-open, #message-action, #grid-back, .mode-switch button";

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const inForm = target.closest && target.closest("input, select, textarea");
    const key = event.key;

    if (helpOpen()) {
      if (key === "Escape" || key === "?") {
        event.preventDefault();
        closeHelp();
      } else if (key === "Tab") {
        event.preventDefault(); // one control in the dialog: keep focus there
        $("help-close").focus();
      }
      return;
    }
    if (inForm) return;
    if (key === "?") {
      event.preventDefault();
      openHelp();
      return;
    }
    if (document.body.classList.contains("no-access")) return;

    if (key === "Enter" && target.closest && target.closest(NATIVE_ENTER)) return;
    const lower = key.length === 1 ? key.toLowerCase() : key;

    if (lower === "g") {
      event.preventDefault();
      setMode(state.mode === "grid" ? "single" : "grid");
      return;
    }
    if (key === "Backspace") {
      event.preventDefault();
      if (!event.repeat) undo();
      return;
    }

    if (state.mode === "grid") {
      if (key === "Enter") {
        event.preventDefault();
        if (!event.repeat) submitGrid();
      } else if (key.startsWith("Arrow")) {
        event.preventDefault();
        moveThumbFocus(key);
      }
      return;
    }

    if ($("single-view").hidden) {
      if (key === "Enter" && !$("message-action").hidden) {
        event.preventDefault();
        loadNext();
      }
      return;
    }
    if (key === "Escape") {
      if (state.shown && state.shown.edit) {
        event.preventDefault();
        leaveEdit();
      }
      return;
    }
    const digit = /^(?:Digit|Numpad)(\d)$/.exec(event.code);
    if (digit) {
      event.preventDefault();
      const n = Number(digit[1]);
      const index = (n === 0 ? 9 : n - 1) + (event.shiftKey && event.code.startsWith("Digit") ? 10 : 0);
      select(index);
      return;
    }
    if (event.repeat && ["Enter", "s", "u", "c"].includes(lower)) return;
    switch (lower) {
      case "Enter":
        event.preventDefault();
        submitSelected();
        break;
      case "s":
        event.preventDefault();
        answer("skip");
        break;
      case "u":
        event.preventDefault();
        answer("unsure");
        break;
      case "c":
        if (state.shown && state.shown.given_label) {
          event.preventDefault();
          answer("label", state.shown.given_label);
        }
        break;
      case "+":
      case "=":
        event.preventDefault();
        zoom.center(1.25);
        break;
      case "-":
      case "_":
        event.preventDefault();
        zoom.center(0.8);
        break;
      case "f":
        event.preventDefault();
        zoom.toggle();
        break;
      case "ArrowLeft":
      case "ArrowRight":
      case "ArrowUp":
      case "ArrowDown": {
        const step = event.shiftKey ? 200 : 60;
        const [dx, dy] = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[key];
        if (zoom.pan(dx, dy)) event.preventDefault();
        break;
      }
      default:
    }
  });

  // ---------- buttons ----------

  $("submit").addEventListener("click", submitSelected);
  $("skip").addEventListener("click", () => answer("skip"));
  $("unsure").addEventListener("click", () => answer("unsure"));
  $("undo").addEventListener("click", undo);
  $("confirm-given").addEventListener("click", () => state.shown && answer("label", state.shown.given_label));
  $("feedback-continue").addEventListener("click", continueAfterFeedback);
  $("edit-cancel").addEventListener("click", leaveEdit);
  $("mode-single").addEventListener("click", () => setMode("single"));
  $("mode-grid").addEventListener("click", () => setMode("grid"));
  $("grid-submit").addEventListener("click", submitGrid);
  $("grid-back").addEventListener("click", () => setMode("single"));
  $("grid-class").addEventListener("change", () => loadGridPage());
  $("message-action").addEventListener("click", loadNext);
  $("help-open").addEventListener("click", openHelp);
  $("help-close").addEventListener("click", closeHelp);
  $("help").addEventListener("click", (event) => {
    if (event.target === $("help")) closeHelp();
  });
  $("history").addEventListener("toggle", () => {
    if ($("history").open) fetchHistory();
  });

  // ---------- start ----------

  async function start() {
    document.body.dataset.mode = "single";
    if (!http.token) return noAccess();
    let res;
    try {
      res = await apiPatient("/api/me");
    } catch (err) {
      return noAccess(String(err));
    }
    if (res.status === 401 || res.status === 403) return noAccess();
    if (!res.ok) return noAccess(errorText(res));
    state.me = res.data;
    state.classes = (res.data.classes || []).map(String);
    buildClasses();
    updateProgress(res.data.progress);
    renderWho();
    const gridSize = state.me.settings && num(state.me.settings.grid_size);
    $("grid-sub").textContent = `The model puts all of these${gridSize ? ` (up to ${gridSize})` : ""} in one class. Mark the ones it got wrong, then submit the page.`;
    await loadNext();
  }

  start();
})();
