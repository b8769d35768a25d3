// Small behaviours htmx does not cover. Everything is wired with listeners in this file
// because the Content-Security-Policy forbids inline scripts and eval.
(function () {
  "use strict";

  var NOTICE_DELAY_MS = 6000;
  var NOTICE_FADE_MS = 300; // matches the .notice transition in kehu.css

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !(event.target instanceof Element)) return;
    var form = event.target.closest(".field-form");
    var cancel = form && form.querySelector("[data-cancel]");
    if (cancel) {
      event.preventDefault();
      cancel.click();
    }
  });

  // htmx focuses [autofocus] in most swaps itself; this covers the rest, and leaves focus alone
  // when the user has already moved into the new content.
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.target;
    if (!(root instanceof Element)) return;
    var field = root.matches("[autofocus]") ? root : root.querySelector("form [autofocus]");
    var active = document.activeElement;
    if (field && (!active || active === document.body || !root.contains(active))) field.focus();
  });

  document.addEventListener("change", function (event) {
    var form = event.target instanceof HTMLSelectElement ? event.target.form : null;
    if (!form || !form.hasAttribute("data-autosubmit")) return;
    // A form with hx- attributes submits through htmx's own triggers; submitting here too would send it twice.
    if (form.getAttributeNames().some(function (name) { return /^(data-)?hx-/.test(name); })) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  function dismiss(notice) {
    notice.classList.add("is-leaving");
    setTimeout(function () { notice.remove(); }, NOTICE_FADE_MS);
  }

  // htmx:load fires once for the page and again for every piece of swapped-in content,
  // including notices that arrive out of band.
  document.addEventListener("htmx:load", function (event) {
    var root = event.target;
    if (!(root instanceof Element)) return;
    var notices = Array.prototype.slice.call(root.querySelectorAll(".notice"));
    if (root.matches(".notice")) notices.push(root);
    notices.forEach(function (notice) {
      // Errors stay until the user has read them and clicks them away.
      if (notice.classList.contains("notice-error") || notice.dataset.timed) return;
      notice.dataset.timed = "1";
      setTimeout(function () { dismiss(notice); }, NOTICE_DELAY_MS);
    });
  });

  document.addEventListener("click", function (event) {
    var notice = event.target instanceof Element && event.target.closest(".notice");
    if (notice && !event.target.closest("a, button")) dismiss(notice);
  });

  // ---------- the search box in the header ----------
  // A combobox (WAI-ARIA pattern): the results under the box form a listbox whose options are links. The focus
  // stays in the box; the arrow keys move the active option (aria-activedescendant), Enter opens it, Escape
  // closes the list and a second Escape leaves the box. "/" anywhere else jumps to the box.

  function searchBox() { return document.getElementById("topsearch-input"); }
  function searchPopup() { return document.getElementById("topsearch-results"); }

  function searchOptions() {
    var popup = searchPopup();
    return popup ? Array.prototype.slice.call(popup.querySelectorAll('[role="option"]')) : [];
  }

  function activeOption() {
    var popup = searchPopup();
    return popup && popup.querySelector('[role="option"][aria-selected="true"]');
  }

  function setActiveOption(option) {
    var box = searchBox();
    searchOptions().forEach(function (each) {
      each.setAttribute("aria-selected", each === option ? "true" : "false");
    });
    if (option) {
      box.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else if (box) {
      box.removeAttribute("aria-activedescendant");
    }
  }

  function searchIsOpen() {
    var box = searchBox();
    return !!box && box.getAttribute("aria-expanded") === "true";
  }

  function openSearch() {
    var box = searchBox(), popup = searchPopup();
    if (!box || !popup || !popup.children.length) return;
    popup.hidden = false;
    box.setAttribute("aria-expanded", "true");
  }

  function closeSearch() {
    var box = searchBox(), popup = searchPopup();
    if (!box || !popup) return;
    setActiveOption(null);
    popup.hidden = true;
    box.setAttribute("aria-expanded", "false");
  }

  function isTyping(element) {
    return element instanceof Element &&
      (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName));
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target !== searchPopup()) return;
    // The option chosen with the arrow keys stays chosen when it is among the fresh results; a reply that
    // arrives after the box was left stays closed.
    var kept = document.getElementById(searchBox().getAttribute("aria-activedescendant") || "");
    setActiveOption(kept && searchPopup().contains(kept) ? kept : null);
    if (document.activeElement === searchBox() && searchPopup().children.length) openSearch(); else closeSearch();
  });

  document.addEventListener("keydown", function (event) {
    var box = searchBox();
    if (!box || event.defaultPrevented || event.isComposing) return;
    if (event.target !== box) {
      if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target)) {
        event.preventDefault();
        box.focus();
        box.select();
      }
      return;
    }
    var options = searchOptions();
    var index = options.indexOf(activeOption());
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!options.length) return;
      event.preventDefault();
      if (!searchIsOpen()) {
        openSearch();
        return;
      }
      var step = event.key === "ArrowDown" ? 1 : -1;
      var next = index === -1 ? (step === 1 ? 0 : options.length - 1) : (index + step + options.length) % options.length;
      setActiveOption(options[next]);
    } else if (event.key === "Enter" && searchIsOpen() && index !== -1) {
      // Without an active option, Enter submits the form: the search page with every result.
      event.preventDefault();
      var chosen = options[index];
      closeSearch();
      chosen.click();
    } else if (event.key === "Escape") {
      event.preventDefault();
      if (searchIsOpen()) closeSearch(); else box.blur();
    }
  });

  document.addEventListener("focusin", function (event) {
    if (event.target === searchBox()) openSearch();
  });

  document.addEventListener("click", function (event) {
    if (searchIsOpen() && !(event.target instanceof Element && event.target.closest(".topsearch"))) closeSearch();
  });

  // The back button brings a page back as it was stored, which may be with the dropdown open.
  document.addEventListener("htmx:historyRestore", closeSearch);

  // ---------- website chat panel ----------

  // The transcript follows new messages, unless the user scrolled up to read.
  var transcriptAtBottom = true;
  function transcript() { return document.querySelector("[data-chat-transcript]"); }
  function toBottom() {
    var box = transcript();
    if (box) box.scrollTop = box.scrollHeight;
  }
  document.addEventListener("DOMContentLoaded", toBottom);
  document.addEventListener("htmx:oobBeforeSwap", function () {
    var box = transcript();
    transcriptAtBottom = !box || box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  });
  document.addEventListener("htmx:oobAfterSwap", function () { if (transcriptAtBottom) toBottom(); });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target instanceof Element && event.target.id === "chat-pane") toBottom();
  });

  // A canned reply goes into the reply box, to be adjusted before sending.
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.hasAttribute("data-chat-canned")) return;
    var box = select.form && select.form.querySelector("textarea[name=body]");
    if (box && select.value) {
      box.value = box.value ? box.value + "\n" + select.value : select.value;
      box.focus();
    }
    select.value = "";
  });

  // Ctrl+Enter (⌘+Enter) sends the reply.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || !(event.target instanceof Element)) return;
    var form = event.target.closest("[data-chat-reply]");
    if (!form) return;
    event.preventDefault();
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  // A new visitor or message: a short tone and, if the user allowed it, a browser notification. The count
  // survives page loads in sessionStorage, so moving between pages does not ring.
  var COUNT_KEY = "kehu-chat-count";
  function ring(title) {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (Context) {
        var audio = ring.audio || (ring.audio = new Context());
        var tone = audio.createOscillator();
        var volume = audio.createGain();
        tone.frequency.value = 880;
        volume.gain.value = 0.06;
        tone.connect(volume);
        volume.connect(audio.destination);
        tone.start();
        tone.stop(audio.currentTime + 0.15);
      }
    } catch (error) { /* no sound before the user has interacted with the page */ }
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      new Notification(title, { tag: "kehu-chat" });
    }
  }
  function checkBadge() {
    var badge = document.getElementById("chat-badge");
    if (!badge || !badge.hasAttribute("data-unread")) return;
    var count = Number(badge.getAttribute("data-unread")) + Number(badge.getAttribute("data-waiting"));
    var stored = sessionStorage.getItem(COUNT_KEY);
    if (stored !== null && count > Number(stored)) ring(badge.getAttribute("data-notify") || "Kehu");
    sessionStorage.setItem(COUNT_KEY, String(count));
  }
  function offerNotifications() {
    var button = document.querySelector("[data-chat-notifications]");
    if (button) button.hidden = !("Notification" in window) || Notification.permission !== "default";
  }
  document.addEventListener("DOMContentLoaded", function () { checkBadge(); offerNotifications(); });
  document.addEventListener("htmx:afterSettle", function () { checkBadge(); offerNotifications(); });
  document.addEventListener("htmx:oobAfterSwap", checkBadge);
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest("[data-chat-notifications]");
    if (button && "Notification" in window) Notification.requestPermission().then(offerNotifications);
  });
})();
