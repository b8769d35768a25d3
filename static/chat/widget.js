// Kehu website chat loader. A customer site embeds it with
//   <script src="https://KEHU/static/chat/widget.js" data-site="KEY" defer></script>
// It adds a floating button and, on the first click, an iframe served by Kehu. Everything lives in a shadow
// root and is styled through the CSSOM (element.style), so the host page's CSS cannot reach it, nothing leaks out,
// and a host page with a strict Content-Security-Policy (no inline styles, Trusted Types) still shows it.
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src || document.querySelector("[data-kehu-chat]")) return;

  var ORIGIN = new URL(script.src, location.href).origin;
  var SITE = script.getAttribute("data-site") || "";
  var ZH = /^zh/i.test(navigator.language || "");
  var TEXT = ZH
    ? { open: "在线咨询", close: "关闭在线咨询", unread: "条新消息" }
    : { open: "Chat with us", close: "Close chat", unread: " new" };
  var ACCENT = "#1d4ed8";
  var NARROW = window.matchMedia("(max-width: 480px)");
  var TOP = "2147483000";

  var host, root, button, badge, iconChat, iconClose, frame;
  var open = false;
  var frameReady = false;

  function css(element, styles) {
    Object.keys(styles).forEach(function (name) {
      element.style.setProperty(name, styles[name], "important");
    });
  }

  function svg(paths) {
    var ns = "http://www.w3.org/2000/svg";
    var icon = document.createElementNS(ns, "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("width", "26");
    icon.setAttribute("height", "26");
    icon.setAttribute("aria-hidden", "true");
    icon.setAttribute("focusable", "false");
    paths.forEach(function (d) {
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "#fff");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      icon.appendChild(path);
    });
    css(icon, { display: "block", margin: "0" });
    return icon;
  }

  function frameUrl() {
    var query = new URLSearchParams({
      site: SITE,
      url: location.href,
      title: document.title,
      ref: document.referrer,
      lang: ZH ? "zh-CN" : "en",
    });
    return ORIGIN + "/chat/widget?" + query.toString();
  }

  function tell(message) {
    // Before its first load the iframe still holds about:blank, whose origin is the host page's.
    if (frameReady) frame.contentWindow.postMessage(message, ORIGIN);
  }

  function tellVisibility() {
    // The iframe polls every 2 s while someone can see it and slows down otherwise; a closed panel counts as hidden.
    tell({ kehuChat: "visibility", hidden: document.hidden || !open });
  }

  function layout() {
    var narrow = NARROW.matches;
    css(button, {
      bottom: narrow ? "16px" : "24px",
      right: narrow ? "16px" : "24px",
      // On a phone the panel covers the screen and has its own close button.
      display: narrow && open ? "none" : "flex",
    });
    if (!frame) return;
    css(frame, narrow
      ? { top: "0", left: "0", right: "0", bottom: "0", width: "100%", height: "100%",
          "max-height": "none", "border-radius": "0", "box-shadow": "none" }
      : { top: "auto", left: "auto", right: "24px", bottom: "96px", width: "360px", height: "560px",
          "max-width": "calc(100vw - 32px)", "max-height": "calc(100vh - 120px)", "border-radius": "14px",
          "box-shadow": "0 16px 48px rgba(15, 23, 42, 0.22), 0 2px 8px rgba(15, 23, 42, 0.08)" });
    css(frame, { display: open ? "block" : "none" });
  }

  function createFrame() {
    frame = document.createElement("iframe");
    frame.src = frameUrl();
    frame.title = TEXT.open;
    css(frame, {
      all: "initial",
      position: "fixed",
      "z-index": TOP,
      border: "0",
      margin: "0",
      padding: "0",
      background: "#fff",
      "color-scheme": "light",
    });
    frame.addEventListener("load", function () {
      frameReady = true;
      tellVisibility();
      if (open) frame.focus();
    });
    root.appendChild(frame);
  }

  function setUnread(count) {
    var shown = open ? 0 : Math.max(0, Math.min(99, Math.floor(Number(count) || 0)));
    badge.textContent = shown ? String(shown) : "";
    css(badge, { display: shown ? "flex" : "none" });
    var label = open ? TEXT.close : TEXT.open;
    button.setAttribute("aria-label", shown ? label + " (" + shown + TEXT.unread + ")" : label);
  }

  function toggle(show) {
    open = show;
    if (open && !frame) createFrame();
    button.setAttribute("aria-expanded", String(open));
    button.title = open ? TEXT.close : TEXT.open;
    css(iconChat, { display: open ? "none" : "block" });
    css(iconClose, { display: open ? "block" : "none" });
    setUnread(0);
    layout();
    tellVisibility();
    if (open) {
      frame.focus();
      tell({ kehuChat: "opened" });
    } else {
      button.focus();
    }
  }

  function hover(on) {
    css(button, {
      transform: on ? "translateY(-2px)" : "none",
      "box-shadow": on
        ? "0 10px 28px rgba(29, 78, 216, 0.45)"
        : "0 6px 20px rgba(29, 78, 216, 0.35), 0 1px 3px rgba(15, 23, 42, 0.2)",
    });
  }

  function build() {
    host = document.createElement("div");
    host.setAttribute("data-kehu-chat", "");
    css(host, { all: "initial", position: "static", display: "block" });
    // Closed: the host page's scripts cannot reach in either.
    root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

    button = document.createElement("button");
    button.type = "button";
    button.title = TEXT.open;
    button.setAttribute("aria-label", TEXT.open);
    button.setAttribute("aria-expanded", "false");
    css(button, {
      all: "initial",
      position: "fixed",
      "z-index": TOP,
      width: "56px",
      height: "56px",
      "border-radius": "50%",
      background: ACCENT,
      cursor: "pointer",
      "align-items": "center",
      "justify-content": "center",
      "box-sizing": "border-box",
      transition: "transform 0.15s ease, box-shadow 0.15s ease",
      "-webkit-tap-highlight-color": "transparent",
    });
    hover(false);

    iconChat = svg([
      "M21 11.5a8.4 8.4 0 0 1-9 8.5 9.3 9.3 0 0 1-4-.9L3 20l1.2-4A8 8 0 0 1 3 11.5 8.4 8.4 0 0 1 12 3a8.4 8.4 0 0 1 9 8.5z",
      "M8 11.5h.01M12 11.5h.01M16 11.5h.01",
    ]);
    iconClose = svg(["M6 6l12 12M18 6L6 18"]);
    css(iconClose, { display: "none" });

    badge = document.createElement("span");
    badge.setAttribute("aria-hidden", "true");
    css(badge, {
      all: "initial",
      position: "absolute",
      top: "-4px",
      right: "-4px",
      "min-width": "20px",
      height: "20px",
      padding: "0 5px",
      "box-sizing": "border-box",
      "border-radius": "10px",
      border: "2px solid #fff",
      background: "#ef4444",
      color: "#fff",
      font: "600 11px/16px system-ui, -apple-system, sans-serif",
      display: "none",
      "align-items": "center",
      "justify-content": "center",
    });

    button.appendChild(iconChat);
    button.appendChild(iconClose);
    button.appendChild(badge);
    button.addEventListener("click", function () { toggle(!open); });
    button.addEventListener("mouseenter", function () { hover(true); });
    button.addEventListener("mouseleave", function () { hover(false); });
    button.addEventListener("focus", function () {
      if (button.matches(":focus-visible")) css(button, { outline: "3px solid #93c5fd", "outline-offset": "3px" });
    });
    button.addEventListener("blur", function () { css(button, { outline: "none" }); });

    root.appendChild(button);
    document.body.appendChild(host);
    layout();

    if (NARROW.addEventListener) NARROW.addEventListener("change", layout);
    else NARROW.addListener(layout);

    document.addEventListener("visibilitychange", tellVisibility);

    window.addEventListener("message", function (event) {
      if (!frame || event.origin !== ORIGIN || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (!data || typeof data !== "object") return;
      if (data.kehuChat === "close" && open) toggle(false);
      else if (data.kehuChat === "unread") setUnread(data.count);
    });
  }

  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
