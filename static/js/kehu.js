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
})();
