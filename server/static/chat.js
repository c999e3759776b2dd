// The chat page's script. Answers are markdown: rendered with the vendored marked, then
// sanitized with the vendored DOMPurify (no scripts, handlers, styles, images or forms), and
// "[n]" in the text becomes a link to the n-th source. Everything else is set as text.
"use strict";
const $ = (id) => document.getElementById(id);
const SANITIZE = {
  FORBID_TAGS: ["style", "img", "svg", "math", "form", "input", "button", "textarea", "select", "iframe", "video", "audio"],
  FORBID_ATTR: ["style", "class", "id"],
  RETURN_DOM_FRAGMENT: true,
};
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    if (!/^(https?:|mailto:)/i.test(node.getAttribute("href") || "")) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});
let conversation = [];   // {role, content} turns sent back with every question
let controller = null;

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

let messages = 0;

function addMessage(role, text) {
  $("empty")?.remove();
  const box = element("div", "msg " + role);
  const body = element("div", "text", text);
  box.append(body);
  $("log").append(box);
  scrollDown();
  return { box, body, id: `m${++messages}`, sources: null };
}

function scrollDown() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}

function note(view, text, isError) {
  view.box.querySelector(".meta")?.remove();
  view.box.append(element("div", isError ? "meta error" : "meta", text));
}

function isWebLink(url) {
  return /^https?:\/\//i.test(url || "");
}

function showSources(view, sources) {
  view.sources = new Map(sources.filter((s) => isWebLink(s.url)).map((s) => [String(s.n), s]));
  view.box.querySelector(".sources")?.remove();
  if (!view.sources.size) return;
  const list = element("ol", "sources");
  for (const [n, s] of view.sources) {
    const a = element("a", "", s.title || s.url);
    a.href = s.url;
    a.title = s.url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    const item = element("li");
    item.value = Number(n);
    item.id = `${view.id}-source-${n}`;
    item.append(a);
    list.append(item);
  }
  view.box.append(list);
}

// "[n]" in text nodes (not in code or links) -> a link to source n, with its title.
function linkCitations(root, view) {
  if (!view.sources?.size) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement?.closest("code, pre, a") && /\[\d+\]/.test(node.data)) nodes.push(node);
  }
  for (const node of nodes) {
    const parts = node.data.split(/(\[\d+\])/);
    const out = document.createDocumentFragment();
    for (const part of parts) {
      const source = /^\[(\d+)\]$/.test(part) ? view.sources.get(part.slice(1, -1)) : undefined;
      if (!source) {
        out.append(part);
        continue;
      }
      const a = element("a", "cite", part);
      a.href = source.url;
      a.title = source.title || source.url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      out.append(a);
    }
    node.replaceWith(out);
  }
}

function renderAnswer(view, markdown) {
  view.body.dataset.raw = markdown;
  const html = marked.parse(markdown, { gfm: true, breaks: true, async: false });
  const fragment = DOMPurify.sanitize(html, SANITIZE);
  linkCitations(fragment, view);
  view.body.replaceChildren(fragment);
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  $("prompt").disabled = busy;
  if (!busy) $("prompt").focus();
}

// Read an SSE body; call onData with each parsed `data:` JSON until `[DONE]`.
async function readEvents(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;          // a comment (": ping") or an empty event
      if (data === "[DONE]") return;
      onData(JSON.parse(data));
    }
  }
}

// A server started with --api-key answers 401 without it: ask once, keep it in this browser.
const KEY_STORE = "ozfig-api-key";
async function postWithKey(url, body, signal) {
  for (let asked = false; ; asked = true) {
    const key = localStorage.getItem(KEY_STORE);
    const headers = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    if (key) headers["Authorization"] = "Bearer " + key;
    const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal });
    if (response.status !== 401 || asked) return response;
    const given = window.prompt(key ? "That API key was refused. API key:" : "This server needs an API key:");
    if (!given || !given.trim()) return response;
    localStorage.setItem(KEY_STORE, given.trim());
  }
}

async function ask(question) {
  const turns = conversation;   // "New chat" starts another list; this answer keeps to its own
  turns.push({ role: "user", content: question });
  addMessage("user", question);
  const view = addMessage("assistant", "");
  view.box.dataset.state = "streaming";
  controller = new AbortController();
  setBusy(true);
  let answer = "";
  let finish = null;
  try {
    const response = await postWithKey("/v1/chat/completions", {
      messages: turns, stream: true, stream_options: { include_usage: true },
      web_search: $("web").checked,
    }, controller.signal);
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body?.error?.message || `HTTP ${response.status}`);
    }
    await readEvents(response.body, (data) => {
      if (data.error) throw new Error(data.error.message);
      if (data.sources) {
        showSources(view, data.sources);
        if (answer) renderAnswer(view, answer);
      }
      for (const choice of data.choices || []) {
        if (choice.delta?.content) {
          answer += choice.delta.content;
          renderAnswer(view, answer);
          scrollDown();
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (data.usage) {
        note(view, `${data.usage.prompt_tokens} prompt + ${data.usage.completion_tokens} answer tokens` +
          (finish === "length" ? " · cut at the length limit" : ""));
      }
    });
    turns.push({ role: "assistant", content: answer });
    view.box.dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError") {
      note(view, "stopped");
      view.box.dataset.state = "stopped";
      if (answer) turns.push({ role: "assistant", content: answer });
      else turns.pop();
    } else {
      note(view, "error: " + err.message, true);
      view.box.dataset.state = "error";
      turns.pop();   // the question can be asked again
    }
  } finally {
    controller = null;
    setBusy(false);
  }
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("prompt").value.trim();
  if (!question || controller) return;
  $("prompt").value = "";
  ask(question);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
$("stop").addEventListener("click", () => controller?.abort());
$("new").addEventListener("click", () => {
  controller?.abort();
  conversation = [];
  $("log").replaceChildren(element("p", "empty", "Ask OzFig anything."));
  $("log").firstChild.id = "empty";
});
