// calhook console: copy buttons, times in the viewer's zone, and live
// updates over Server-Sent Events. Every form works without this file.
"use strict";

function localTimes(root) {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const el of root.querySelectorAll("time[datetime]")) {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) el.textContent = fmt.format(d);
  }
}

function copyButtons(root) {
  for (const btn of root.querySelectorAll("button[data-copy]")) {
    btn.addEventListener("click", async () => {
      const src = document.getElementById(btn.dataset.copy);
      if (!src) return;
      try {
        await navigator.clipboard.writeText(src.textContent.trim());
        btn.textContent = "Copied";
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents(src);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        btn.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { btn.textContent = "Copy"; }, 2000);
    });
  }
}

// refresh fetches the page again and swaps in its live parts.
let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    for (const part of document.querySelectorAll("[data-live-part][id]")) {
      const next = doc.getElementById(part.id);
      if (next) {
        part.replaceChildren(...next.childNodes);
        localTimes(part);
        copyButtons(part);
      }
    }
  } finally {
    refreshing = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  copyButtons(document);
  const live = document.body.dataset.live;
  if (live && document.querySelector("[data-live-part]") && window.EventSource) {
    const es = new EventSource(live);
    es.addEventListener("change", refresh);
  }
});
