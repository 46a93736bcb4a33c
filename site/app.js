// foobar.com: fills in the home page's "This visit" panel (site/.templates/home.html). No
// inline code, so the default CSP holds.
"use strict";

function show(id, text) {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
}

function describeProtocol(name) {
  const names = { h2: "HTTP/2", "http/1.1": "HTTP/1.1", h3: "HTTP/3" };
  return names[name] || name || "unknown";
}

window.addEventListener("load", () => {
  const [navigation] = performance.getEntriesByType("navigation");
  if (navigation) {
    show("protocol", describeProtocol(navigation.nextHopProtocol) +
      (location.protocol === "https:" ? " over TLS" : ""));
    const ms = navigation.loadEventStart || navigation.responseEnd;
    show("timing", Math.round(ms) + " ms");
  }
  fetch("/healthz", { cache: "no-store" })
    .then((response) => show("health", response.ok ? "healthy" : "HTTP " + response.status))
    .catch(() => show("health", "unreachable"));
});
