// Live help desk updates: one websocket per tab to /ws/helpdesk/ on this tenant's host.
//
// Every event becomes an htmx event on <body> named "helpdesk-" + kind with dots
// turned into dashes ("ticket.created" -> "helpdesk-ticket-created"), with the
// event as `detail`, so a list refreshes itself with
//   hx-trigger="helpdesk-ticket-created from:body".
// After a reconnect "helpdesk-reconnected" fires: events sent while the socket
// was down are lost, so lists that care should refresh on it too.
(function () {
  "use strict";

  var PATH = "/ws/helpdesk/";
  var MIN_DELAY_MS = 1000;
  var MAX_DELAY_MS = 30000;
  var NOTICE_MS = 8000;
  // 4404 from an open socket: this visitor may no longer listen, so stop. A
  // refused handshake (signed out, not a member) reaches the browser as 1006
  // like a network drop; the backoff keeps those retries down to one in 30 s.
  var CLOSE_NOT_ALLOWED = 4404;

  var delay = MIN_DELAY_MS;
  var hadConnection = false;
  var socket = null;
  var noticeTimer = null;
  var leaving = false;

  function fire(name, detail) {
    if (window.htmx) {
      window.htmx.trigger(document.body, name, detail);
    } else {
      document.body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
    }
  }

  function notice(text) {
    var region = document.getElementById("live-notice");
    if (!region || !text) return;
    // The region stays in the page (empty, so invisible): a live region that
    // appears together with its text is often not announced.
    region.textContent = text;
    if (noticeTimer) clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () {
      region.textContent = "";
    }, NOTICE_MS);
  }

  function describe(event) {
    if (event.kind === "call.started") {
      return "New call from " + (event.from_number || "an unknown number") + ".";
    }
    if (event.kind === "ticket.created") {
      var text = "New ticket " + (event.number || "");
      if (event.subject) text += ": " + event.subject;
      if (event.priority === "urgent") text += " (urgent)";
      return text + ".";
    }
    return "";
  }

  function onMessage(message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    if (!event || typeof event.kind !== "string") return;
    fire("helpdesk-" + event.kind.replaceAll(".", "-"), event);
    notice(describe(event));
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + PATH);
    socket.addEventListener("open", function () {
      // Lets styles (and browser tests) tell a live page from a stale one.
      document.documentElement.setAttribute("data-live", "connected");
      delay = MIN_DELAY_MS;
      if (hadConnection) fire("helpdesk-reconnected", {});
      hadConnection = true;
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (closed) {
      document.documentElement.setAttribute("data-live", "offline");
      socket = null;
      if (leaving || closed.code === CLOSE_NOT_ALLOWED) return;
      // Jitter, so a restarted server is not hit by every tab at the same moment.
      var wait = Math.round(delay / 2 + Math.random() * delay / 2);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
      setTimeout(connect, wait);
    });
  }

  // Leaving the page closes the socket quietly instead of counting as a drop;
  // a page restored from the back/forward cache connects again.
  window.addEventListener("pagehide", function () {
    leaving = true;
    if (socket) socket.close(1000);
  });
  window.addEventListener("pageshow", function (shown) {
    if (!shown.persisted) return;
    leaving = false;
    if (!socket) connect();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", connect);
  } else {
    connect();
  }
})();
