// The report form's service picker, searched: the resident describes the problem and
// picks from the matching services (knowledge-base search of names, keywords and
// departments, typos and everyday words included). Without this script the grouped
// <select> works alone. Text from the server is only ever set as textContent.
(function () {
  "use strict";
  const finder = document.getElementById("service-finder");
  const input = document.getElementById("service-search");
  const select = document.getElementById("report-service");
  const list = document.getElementById("service-matches");
  const status = document.getElementById("service-search-status");
  if (!finder || !input || !select) return;
  finder.hidden = false;
  const offered = new Map();
  for (const option of select.options) {
    if (option.value) offered.set(option.value, option);
  }
  let pending = 0;

  function choose(code) {
    select.value = code;
    select.dispatchEvent(new Event("change", {bubbles: true}));
    status.textContent = "Chosen: " + offered.get(code).textContent;
    list.replaceChildren();
    select.focus();
  }

  async function search() {
    const query = input.value.trim();
    const ticket = ++pending;
    if (query.length < 2) {
      list.replaceChildren();
      status.textContent = "";
      return;
    }
    const response = await fetch("/api/kb/search?limit=10&q=" + encodeURIComponent(query));
    if (ticket !== pending) return;  // a newer query is on its way
    const hits = response.ok ? await response.json() : [];
    const codes = [];
    for (const h of hits) {
      if (h.service_code && offered.has(h.service_code) && !codes.includes(h.service_code)) {
        codes.push(h.service_code);
      }
    }
    list.replaceChildren(...codes.slice(0, 5).map(function (code) {
      const option = offered.get(code);
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "service-match";
      button.dataset.code = code;
      button.textContent = option.textContent + " (" + option.parentElement.label + ")";
      button.addEventListener("click", function () { choose(code); });
      item.append(button);
      return item;
    }));
    status.textContent = codes.length ? codes.length + " matching service(s)"
                                      : "No matching service: choose from the list";
  }

  let timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {  // Enter takes the best match, never submits the report
      event.preventDefault();
      const first = list.querySelector("button");
      if (first) choose(first.dataset.code);
      else search();
    }
  });
})();
