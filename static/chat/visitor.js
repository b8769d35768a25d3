// The website chat as the visitor sees it: the page inside the iframe that widget.js opens (templates/chat/widget.html).
// The Content-Security-Policy forbids inline scripts and styles, so every behaviour is wired here; visitor and staff
// text only ever reaches the page through textContent, never as HTML.
(function () {
  "use strict";

  var TOKEN_KEY = "kehu-chat-token";
  var POLL_VISIBLE_MS = 2000;
  var POLL_HIDDEN_MS = 10000;
  var RETRY_FIRST_MS = 2000;
  var RETRY_MAX_MS = 30000;
  var TOO_MANY_MS = 10000;
  var BODY_MAX = 2000;
  var COUNTER_FROM = 1800;
  var GROUP_MS = 5 * 60 * 1000;

  function $(id) { return document.getElementById(id); }

  var T = JSON.parse($("chat-strings").textContent);
  var page = document.body.dataset;
  var LANG = document.documentElement.lang || "zh-CN";
  var EMBEDDED = window.parent !== window;
  // On a phone, focusing a text field pops up the keyboard over half the panel; move focus to headings instead.
  var COARSE = window.matchMedia("(pointer: coarse)").matches;

  var views = {
    loading: $("view-loading"),
    form: $("view-form"),
    chat: $("view-chat"),
    thanks: $("view-thanks"),
  };
  var prechat = $("prechat");
  var transcript = $("transcript");
  var scroller = $("scroller");
  var composer = $("composer");
  var bodyField = $("f-body");
  var sendButton = $("send");
  var ratingForm = $("rating-form");

  var state = {
    view: "loading",
    online: false,
    hours: "",
    visitor: null,
    conversation: null,
    lastId: 0,
    seen: new Set(),
    mode: "start",
    parentHidden: false,
    unread: 0,
  };

  // ---------- the visitor's token ----------

  function newToken() {
    var bytes = new Uint8Array(32);
    crypto.getRandomValues(bytes);
    var binary = "";
    bytes.forEach(function (byte) { binary += String.fromCharCode(byte); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Browsers that block third-party storage throw on localStorage inside an iframe; the chat still works for
  // this tab (sessionStorage) or this page view (memory), it just will not remember the visitor next time.
  function loadToken() {
    var stores = [];
    try { stores.push(window.localStorage); } catch (error) { /* blocked */ }
    try { stores.push(window.sessionStorage); } catch (error) { /* blocked */ }
    for (var i = 0; i < stores.length; i++) {
      try {
        var token = stores[i].getItem(TOKEN_KEY);
        if (!/^[A-Za-z0-9_-]{43}$/.test(token || "")) {
          token = newToken();
          stores[i].setItem(TOKEN_KEY, token);
        }
        return token;
      } catch (error) { /* try the next store */ }
    }
    return newToken();
  }

  var token = loadToken();

  // ---------- talking to Kehu ----------

  function api(method, path, payload) {
    var init = {
      method: method,
      credentials: "omit",
      cache: "no-store",
      headers: { "X-Visitor-Token": token, "Content-Type": "application/json" },
    };
    if (payload !== undefined) init.body = JSON.stringify(payload);
    // Kehu answers (and words its errors) in the language the widget shows.
    var lang = document.body.getAttribute("data-lang");
    if (lang) path += (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + encodeURIComponent(lang);
    return fetch(path, init).then(function (response) {
      if (response.status === 204) return { status: 204, data: null, response: response };
      return response.json().catch(function () { return null; }).then(function (data) {
        return { status: response.status, data: data, response: response };
      });
    });
  }

  function retryAfter(response, fallback) {
    var seconds = parseInt(response.headers.get("Retry-After") || "", 10);
    return seconds > 0 ? Math.min(seconds * 1000, 5 * RETRY_MAX_MS) : fallback;
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function setConnection(text) {
    var line = $("connection");
    line.textContent = text || "";
    line.hidden = !text;
  }

  // The page is useless without the state, so keep trying (with backoff) and say so.
  async function fetchState() {
    var delay = RETRY_FIRST_MS;
    for (;;) {
      try {
        var result = await api("GET", "/chat/api/state");
        if (result.status === 200 && result.data) {
          setConnection(null);
          return result.data;
        }
        if (result.status === 429) {
          setConnection(T.too_many);
          await sleep(retryAfter(result.response, TOO_MANY_MS));
          continue;
        }
      } catch (error) { /* offline or the server is restarting */ }
      setConnection(T.reconnecting);
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
  }

  function tellParent(message) {
    // The host page's origin is not known here; these messages carry nothing private.
    if (EMBEDDED) window.parent.postMessage(message, "*");
  }

  // ---------- views and focus ----------

  function showView(name, focusTarget) {
    state.view = name;
    Object.keys(views).forEach(function (key) { views[key].hidden = key !== name; });
    if (focusTarget) focusTarget.focus();
  }

  function fieldOrHeading(field, heading) {
    return COARSE ? heading : field;
  }

  function focusCurrentView() {
    if (state.view === "form") {
      var empty = Array.prototype.find.call(prechat.querySelectorAll("input, textarea"), function (input) {
        return !input.value.trim();
      });
      fieldOrHeading(empty || $("f-question"), modeHeading()).focus();
    } else if (state.view === "chat") {
      if (!$("composer-area").hidden) fieldOrHeading(bodyField, $("chat-heading")).focus();
      else if (!$("rating").hidden) $("rating-heading").focus();
      else $("new-conversation").focus();
    } else if (state.view === "thanks") {
      $("thanks-heading").focus();
    }
  }

  function showPresence() {
    $("presence-online").hidden = !state.online;
    $("presence-offline").hidden = state.online;
  }

  function applyState(data, focus) {
    state.online = Boolean(data.online);
    state.hours = data.hours || "";
    state.visitor = data.visitor || null;
    state.conversation = data.conversation || null;
    showPresence();
    resetTranscript();
    appendMessages(data.messages || [], false);
    state.lastId = Math.max(state.lastId, Number(data.last_id) || 0);
    var conversation = state.conversation;
    if (!conversation) showForm(state.online ? "start" : "leave", focus);
    else if (conversation.status === "open") showOpenChat(focus);
    else showClosedChat(focus);
  }

  async function refresh(focus) {
    stopPolling();
    applyState(await fetchState(), focus);
  }

  // ---------- pre-chat form / leave a message ----------

  var CONTACT_FIELDS = ["mobile", "wechat", "email"];
  var PRECHAT_FIELDS = ["name"].concat(CONTACT_FIELDS, ["question"]);

  function modeHeading() {
    return $(state.mode === "start" ? "form-heading-start" : "form-heading-leave");
  }

  function showForm(mode, focus) {
    state.mode = mode;
    prechat.dataset.mode = mode;
    $("hours").textContent = state.hours;
    $("hours-line").hidden = !state.hours;
    var name = prechat.elements.name;
    if (!name.value && state.visitor && state.visitor.name) name.value = state.visitor.name;
    clearErrors(prechat);
    showView("form", focus ? modeHeading() : null);
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error]").forEach(function (line) { line.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (field) { field.removeAttribute("aria-invalid"); });
    form.querySelectorAll(".form-error").forEach(function (line) { line.textContent = ""; });
  }

  // Puts each message beside its field and returns the first field to focus. Messages for fields the form does not
  // show go to the line above the submit button, so nothing the server says is lost.
  function showErrors(form, errors, formLine) {
    clearErrors(form);
    var first = null;
    var stray = [];
    Object.keys(errors || {}).forEach(function (name) {
      var line = form.querySelector('[data-error="' + name + '"]');
      if (!line) {
        stray.push(String(errors[name]));
        return;
      }
      line.textContent = String(errors[name]);
      var fields = name === "contact"
        ? CONTACT_FIELDS.map(function (contact) { return form.elements[contact]; })
        : [form.elements[name]];
      fields.forEach(function (field) {
        if (field && field.setAttribute) field.setAttribute("aria-invalid", "true");
      });
      var field = fields[0];
      if (field && field.focus && !first) first = field;
    });
    if (stray.length) $(formLine).textContent = stray.join(" ");
    if (first) first.focus();
    else if (stray.length) $(formLine).focus();
  }

  function prechatValues() {
    var values = {};
    PRECHAT_FIELDS.forEach(function (name) { values[name] = prechat.elements[name].value.trim(); });
    return values;
  }

  // The obvious mistakes only; the server's 422 has the last word.
  function checkPrechat(values) {
    var errors = {};
    if (!values.name) errors.name = T.name_required;
    if (!values.mobile && !values.wechat && !values.email) errors.contact = T.contact_required;
    var digits = values.mobile.replace(/[\s()+-]/g, "");
    if (values.mobile && !/^\d{6,15}$/.test(digits)) errors.mobile = T.mobile_invalid;
    if (values.email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email)) errors.email = T.email_invalid;
    if (!values.question) errors.question = T.question_required;
    return Object.keys(errors).length ? errors : null;
  }

  async function submitPrechat(event) {
    event.preventDefault();
    var submit = $("prechat-submit");
    if (submit.disabled) return;
    var values = prechatValues();
    var errors = checkPrechat(values);
    if (errors) {
      showErrors(prechat, errors, "e-form");
      return;
    }
    clearErrors(prechat);
    var payload = Object.assign({}, values, {
      site: page.site || "",
      page_url: page.url || "",
      page_title: page.title || "",
      referrer: page.ref || "",
      language: page.lang || LANG,
    });
    var starting = state.mode === "start";
    submit.disabled = true;
    prechat.setAttribute("aria-busy", "true");
    var result;
    try {
      result = await api("POST", starting ? "/chat/api/start" : "/chat/api/leave-message", payload);
    } catch (error) {
      $("e-form").textContent = T.network;
      return;
    } finally {
      submit.disabled = false;
      prechat.removeAttribute("aria-busy");
    }
    if (result.status === 201) {
      prechat.elements.question.value = "";
      if (starting && result.data) {
        applyState(result.data, false);
        fieldOrHeading(bodyField, $("chat-heading")).focus();
      } else {
        showView("thanks", $("thanks-heading"));
      }
    } else if (result.status === 422 && result.data) {
      showErrors(prechat, result.data.errors, "e-form");
    } else {
      $("e-form").textContent = result.status === 429 ? T.too_many : T.failed;
    }
  }

  // ---------- transcript ----------

  var timeFormat = new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit", hour12: false });
  var dayFormat = new Intl.DateTimeFormat(LANG, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
  });

  function formatTime(date) {
    var today = new Date();
    var sameDay = date.toDateString() === today.toDateString();
    return (sameDay ? timeFormat : dayFormat).format(date);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function resetTranscript() {
    transcript.replaceChildren();
    state.seen = new Set();
    state.lastId = 0;
  }

  function messageNode(message, previous) {
    var author = message.author === "visitor" || message.author === "staff" ? message.author : "system";
    var item = element("li", "msg msg-" + author);
    item.dataset.author = author;
    item.dataset.name = message.name || "";
    var at = new Date(message.at);
    item.dataset.at = isNaN(at) ? "" : String(at.getTime());
    if (author === "system") {
      item.appendChild(element("p", "msg-system", String(message.body || "")));
      return item;
    }
    // Consecutive messages from the same person share one name line.
    var continued = previous && previous.dataset.author === author && previous.dataset.name === item.dataset.name &&
      item.dataset.at && previous.dataset.at && item.dataset.at - previous.dataset.at < GROUP_MS;
    if (continued) item.classList.add("msg-continued");
    var meta = element("p", "msg-meta");
    if (author === "staff") meta.appendChild(element("span", "msg-name", message.name || T.staff));
    else meta.appendChild(element("span", "visually-hidden", T.you));
    if (item.dataset.at) {
      var time = element("time", "msg-time", formatTime(at));
      time.dateTime = at.toISOString();
      meta.appendChild(time);
    }
    item.appendChild(meta);
    item.appendChild(element("div", "msg-bubble", String(message.body || "")));
    return item;
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function appendMessages(messages, live) {
    var follow = nearBottom();
    var fromStaff = 0;
    var ownMessage = false;
    messages.forEach(function (message) {
      var id = Number(message.id);
      if (!id || state.seen.has(id)) return;
      state.seen.add(id);
      state.lastId = Math.max(state.lastId, id);
      transcript.appendChild(messageNode(message, transcript.lastElementChild));
      if (message.author === "staff") fromStaff++;
      if (message.author === "visitor") ownMessage = true;
    });
    if (!live || follow || ownMessage) scrollToBottom();
    if (live && fromStaff && isHidden()) {
      state.unread += fromStaff;
      tellParent({ kehuChat: "unread", count: state.unread });
    }
  }

  function appendSystemLine(text) {
    var follow = nearBottom();
    var item = element("li", "msg msg-system");
    item.dataset.author = "system";
    item.appendChild(element("p", "msg-system", text));
    transcript.appendChild(item);
    if (follow) scrollToBottom();
  }

  // ---------- an open conversation ----------

  function showOpenChat(focus) {
    $("composer-area").hidden = false;
    $("closed-area").hidden = true;
    $("rating").hidden = true;
    $("rated").hidden = true;
    $("confirm-end").hidden = true;
    $("e-body").textContent = "";
    showView("chat", focus ? fieldOrHeading(bodyField, $("chat-heading")) : null);
    scrollToBottom();
    startPolling();
  }

  function autosize() {
    // CSSOM writes are allowed under a style-src 'self' policy; only style attributes in markup are not.
    bodyField.style.height = "auto";
    bodyField.style.height = Math.min(bodyField.scrollHeight + 2, 128) + "px";
  }

  function updateCounter() {
    var length = bodyField.value.length;
    var counter = $("counter");
    counter.hidden = length < COUNTER_FROM;
    counter.textContent = length + " / " + BODY_MAX;
    counter.classList.toggle("is-full", length >= BODY_MAX);
  }

  async function sendMessage(event) {
    if (event) event.preventDefault();
    var text = bodyField.value.trim();
    if (!text || sendButton.disabled) return;
    var hadFocus = document.activeElement === bodyField;
    sendButton.disabled = true;
    // readOnly rather than disabled keeps the keyboard open on phones and focus in the field.
    bodyField.readOnly = true;
    composer.setAttribute("aria-busy", "true");
    $("e-body").textContent = "";
    bodyField.removeAttribute("aria-invalid");
    var result;
    try {
      result = await api("POST", "/chat/api/messages", { body: text });
    } catch (error) {
      $("e-body").textContent = T.network;
      return;
    } finally {
      sendButton.disabled = false;
      bodyField.readOnly = false;
      composer.removeAttribute("aria-busy");
      if (hadFocus) bodyField.focus();
    }
    if (result.status === 201 && result.data) {
      bodyField.value = "";
      autosize();
      updateCounter();
      if (result.data.message) appendMessages([result.data.message], true);
      state.lastId = Math.max(state.lastId, Number(result.data.last_id) || 0);
    } else if (result.status === 422 && result.data && result.data.errors) {
      $("e-body").textContent = String(result.data.errors.body || T.failed);
      bodyField.setAttribute("aria-invalid", "true");
    } else if (result.status === 409) {
      await refresh(true);
    } else {
      $("e-body").textContent = result.status === 429 ? T.too_many : T.failed;
    }
  }

  function onComposerKey(event) {
    // Enter also confirms a pinyin candidate in a Chinese input method; that Enter must not send.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    event.preventDefault();
    sendMessage();
  }

  function askToEnd() {
    $("confirm-end").hidden = false;
    $("end-yes").focus();
  }

  function keepChatting() {
    $("confirm-end").hidden = true;
    $("end").focus();
  }

  async function endConversation() {
    var yes = $("end-yes");
    if (yes.disabled) return;
    yes.disabled = true;
    var result;
    try {
      result = await api("POST", "/chat/api/end", {});
    } catch (error) {
      $("e-body").textContent = T.network;
      return;
    } finally {
      yes.disabled = false;
    }
    if (result.status === 200 && result.data) {
      conversationClosed(Boolean(result.data.can_rate));
    } else if (result.status === 409) {
      await refresh(true);
    } else {
      $("e-body").textContent = result.status === 429 ? T.too_many : T.failed;
    }
  }

  // ---------- a closed conversation: rate it, start another ----------

  function conversationClosed(canRate) {
    stopPolling();
    var conversation = state.conversation || {};
    conversation.status = "closed";
    conversation.can_rate = canRate;
    state.conversation = conversation;
    showClosedChat(true);
  }

  function showClosedChat(focus) {
    var conversation = state.conversation;
    // Say so once: the server may already have written its own closing line.
    var last = transcript.lastElementChild;
    if (!last || last.dataset.author !== "system") appendSystemLine(T.ended);
    var rate = Boolean(conversation.can_rate && !conversation.rated);
    $("composer-area").hidden = true;
    $("closed-area").hidden = false;
    $("rating").hidden = !rate;
    $("rated").hidden = !conversation.rated;
    if (rate) {
      ratingForm.reset();
      showStars(0);
      clearErrors(ratingForm);
    }
    showView("chat", focus ? (rate ? $("rating-heading") : $("new-conversation")) : null);
    scrollToBottom();
  }

  var starLabels = Array.prototype.slice.call(document.querySelectorAll(".star"));

  function checkedRating() {
    var checked = ratingForm.querySelector('input[name="rating"]:checked');
    return checked ? Number(checked.value) : 0;
  }

  function showStars(value) {
    starLabels.forEach(function (label) {
      label.classList.toggle("is-on", Number(label.dataset.value) <= value);
    });
    var label = starLabels[value - 1];
    $("star-caption").textContent = label ? label.title : "";
  }

  async function submitRating(event) {
    event.preventDefault();
    var submit = ratingForm.querySelector('button[type="submit"]');
    if (submit.disabled) return;
    var rating = checkedRating();
    if (!rating) {
      showErrors(ratingForm, { rating: T.rating_required }, "e-rating-form");
      ratingForm.querySelector('input[name="rating"]').focus();
      return;
    }
    clearErrors(ratingForm);
    submit.disabled = true;
    var result;
    try {
      result = await api("POST", "/chat/api/rate", { rating: rating, comment: ratingForm.elements.comment.value.trim() });
    } catch (error) {
      $("e-rating-form").textContent = T.network;
      return;
    } finally {
      submit.disabled = false;
    }
    if (result.status === 201 || result.status === 409) {
      state.conversation.rated = true;
      $("rating").hidden = true;
      $("rated").hidden = false;
      scrollToBottom();
      $("rated-heading").focus();
    } else if (result.status === 422 && result.data) {
      showErrors(ratingForm, result.data.errors, "e-rating-form");
      if (result.data.errors && result.data.errors.rating) ratingForm.querySelector('input[name="rating"]').focus();
    } else {
      $("e-rating-form").textContent = result.status === 429 ? T.too_many : T.failed;
    }
  }

  // The state is fetched again for a fresh "is anyone online"; its closed conversation is left behind.
  async function startAgain() {
    stopPolling();
    var data = await fetchState();
    state.online = Boolean(data.online);
    state.hours = data.hours || "";
    state.visitor = data.visitor || state.visitor;
    state.conversation = null;
    showPresence();
    resetTranscript();
    showForm(state.online ? "start" : "leave", true);
  }

  // ---------- polling ----------

  var poll = { active: false, inFlight: false, timer: 0, failures: 0, generation: 0 };

  function isHidden() {
    return document.visibilityState === "hidden" || state.parentHidden;
  }

  function pollDelay() {
    return isHidden() ? POLL_HIDDEN_MS : POLL_VISIBLE_MS;
  }

  function schedulePoll(ms) {
    clearTimeout(poll.timer);
    if (poll.active) poll.timer = setTimeout(pollOnce, ms);
  }

  function startPolling() {
    poll.active = true;
    poll.failures = 0;
    schedulePoll(pollDelay());
  }

  function stopPolling() {
    poll.active = false;
    poll.generation++;
    clearTimeout(poll.timer);
  }

  async function pollOnce() {
    if (!poll.active || poll.inFlight) return;
    poll.inFlight = true;
    var generation = poll.generation;
    var next = pollDelay();
    try {
      var result = await api("GET", "/chat/api/poll?after=" + encodeURIComponent(state.lastId));
      // A poll that was on its way while the conversation ended or another began answers for the old one.
      if (generation !== poll.generation) return;
      if (result.status === 429) {
        setConnection(T.too_many);
        next = Math.max(next, retryAfter(result.response, TOO_MANY_MS));
      } else if (result.status >= 500) {
        throw new Error("server error " + result.status);
      } else if (result.status === 204 || result.status === 200) {
        poll.failures = 0;
        setConnection(null);
        if (result.data) {
          appendMessages(result.data.messages || [], true);
          state.lastId = Math.max(state.lastId, Number(result.data.last_id) || 0);
          if (result.data.status === "closed") conversationClosed(Boolean(result.data.can_rate));
        }
      } else {
        // The conversation is gone or no longer this visitor's: start from the state again.
        poll.inFlight = false;
        await refresh(false);
        return;
      }
    } catch (error) {
      poll.failures++;
      setConnection(T.reconnecting);
      next = Math.min(RETRY_FIRST_MS * Math.pow(2, poll.failures - 1), RETRY_MAX_MS);
    } finally {
      poll.inFlight = false;
    }
    if (generation === poll.generation) schedulePoll(next);
  }

  function visibilityChanged() {
    if (isHidden()) return;
    if (state.unread) {
      state.unread = 0;
      tellParent({ kehuChat: "unread", count: 0 });
    }
    // Back in view: catch up now rather than at the end of a slow (hidden) interval.
    if (poll.active && !poll.inFlight && !poll.failures) schedulePoll(0);
  }

  // ---------- wiring ----------

  function closePanel() {
    tellParent({ kehuChat: "close" });
  }

  if (!EMBEDDED) $("chat-close").hidden = true;
  $("chat-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.isComposing) return;
    if (!$("confirm-end").hidden) keepChatting();
    else closePanel();
  });

  window.addEventListener("message", function (event) {
    if (!EMBEDDED || event.source !== window.parent) return;
    var data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.kehuChat === "visibility") {
      state.parentHidden = Boolean(data.hidden);
      visibilityChanged();
    } else if (data.kehuChat === "opened") {
      focusCurrentView();
    }
  });
  document.addEventListener("visibilitychange", visibilityChanged);

  prechat.addEventListener("submit", submitPrechat);
  prechat.addEventListener("input", function (event) {
    // A corrected field loses its complaint; the "at least one way" message goes with any contact field.
    var name = event.target.name;
    var line = prechat.querySelector('[data-error="' + name + '"]');
    if (line) line.textContent = "";
    event.target.removeAttribute("aria-invalid");
    if (CONTACT_FIELDS.indexOf(name) >= 0 && event.target.value.trim()) {
      $("e-contact").textContent = "";
      CONTACT_FIELDS.forEach(function (contact) { prechat.elements[contact].removeAttribute("aria-invalid"); });
    }
  });

  composer.addEventListener("submit", sendMessage);
  bodyField.addEventListener("keydown", onComposerKey);
  bodyField.addEventListener("input", function () {
    autosize();
    updateCounter();
    if ($("e-body").textContent) {
      $("e-body").textContent = "";
      bodyField.removeAttribute("aria-invalid");
    }
  });
  $("end").addEventListener("click", askToEnd);
  $("end-no").addEventListener("click", keepChatting);
  $("end-yes").addEventListener("click", endConversation);

  ratingForm.addEventListener("submit", submitRating);
  ratingForm.addEventListener("change", function (event) {
    if (event.target.name !== "rating") return;
    showStars(checkedRating());
    $("e-rating").textContent = "";
  });
  starLabels.forEach(function (label) {
    label.addEventListener("mouseenter", function () { showStars(Number(label.dataset.value)); });
    label.addEventListener("mouseleave", function () { showStars(checkedRating()); });
  });

  $("new-conversation").addEventListener("click", startAgain);
  $("another-message").addEventListener("click", startAgain);

  (async function start() {
    applyState(await fetchState(), true);
  })();
})();
