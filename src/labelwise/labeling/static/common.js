/* labelwise: what the annotator page (label.js) and the admin page (admin.js) share, as window.labelwise.
   Loaded before the page's own script; it only defines things, the page decides what runs. */
"use strict";

window.labelwise = (() => {
  const $ = (id) => document.getElementById(id);

  // ---------- token and HTTP ----------

  /** The token from the link (#token=…), moved into sessionStorage under `key` and out of the address bar.
      Each page passes its own key, so an admin link and an annotator link open in one browser keep their own tokens. */
  function takeToken(key) {
    const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(key, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(key);
  }

  /** The server could not be reached at all (no HTTP answer); the message is the browser's. */
  class NetworkError extends Error {}

  /** A connection to the JSON API with the token stored under `tokenKey`, sent in an Authorization header. */
  function connect(tokenKey) {
    const token = takeToken(tokenKey);
    const conn = {
      token,
      clockSkew: 0, // server time minus ours, seconds (from the Date header)
      api,
      fetchWithToken,
    };

    /** A plain fetch() with the token (for what is not JSON, like images): no NetworkError, no parsing. */
    function fetchWithToken(path) {
      return fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    }

    /** GET `path`, or POST `body` as JSON; resolves to {status, ok, data} whatever the status,
        rejects with a NetworkError when there is no answer. */
    async function api(path, body) {
      const init = {
        method: body === undefined ? "GET" : "POST",
        headers: { Authorization: `Bearer ${token}` },
        cache: "no-store",
      };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let res;
      try {
        res = await fetch(path, init);
      } catch (err) {
        throw new NetworkError((err && err.message) || String(err));
      }
      const date = Date.parse(res.headers.get("Date") || "");
      if (!Number.isNaN(date)) {
        const skew = date / 1000 - Date.now() / 1000;
        conn.clockSkew = Math.abs(skew) > 2 ? skew : 0; // the header has whole seconds
      }
      const text = await res.text();
      let data = null;
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = { detail: text };
        }
      }
      return { status: res.status, ok: res.ok, data };
    }

    return conn;
  }

  function errorText(res) {
    const d = res.data || {};
    return d.error || d.detail || d.reason || `The server answered ${res.status}.`;
  }

  // ---------- small UI helpers ----------

  let toastTimer = null;
  /** Shows `text` in the page's #toast for `ms` milliseconds (0: until the next toast). */
  function toast(text, kind = "info", ms = 3500) {
    const box = $("toast");
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = false;
    clearTimeout(toastTimer);
    if (ms > 0) toastTimer = setTimeout(() => (box.hidden = true), ms);
  }

  /** A new element: attrs "class" and "text" set className and textContent, the others are attributes. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

  /** How long ago, in words, `seconds` (not negative) back: "just now", "5 min ago", "3 h ago". */
  function since(seconds) {
    if (seconds < 60) return "just now";
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
  }

  return Object.freeze({ $, takeToken, NetworkError, connect, errorText, toast, el, num, since });
})();
