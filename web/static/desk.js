// The call-taker desk: caller history, knowledge base, service search and questions,
// location (address, intersection or map), duplicates, and the contact itself. Every
// step works from the keyboard; text from the server is only ever set as textContent.
(function () {
  "use strict";
  const desk = document.getElementById("desk");
  if (!desk) return;
  const api = desk.dataset.api;
  const token = document.querySelector("meta[name=csrf-token]").content;
  const $ = id => document.getElementById(id);
  const chosen = {service: null, join: null};
  window.geo311Desk = {busy: 0};

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    return e;
  }

  async function call(url, body) {
    window.geo311Desk.busy++;
    try {
      const init = {headers: {"Accept": "application/json", "X-CSRFToken": token}};
      if (body !== undefined) {
        init.method = "POST";
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      const response = await fetch(url, init);
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        const why = Array.isArray(data) && data[0] ? data[0].description : response.statusText;
        throw new Error(why || String(response.status));
      }
      return data;
    } finally {
      window.geo311Desk.busy--;
    }
  }

  // Up and Down move between the buttons of a result list.
  function arrowKeys(list) {
    list.addEventListener("keydown", e => {
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      const buttons = [...list.querySelectorAll("button")];
      const at = buttons.indexOf(document.activeElement);
      if (at < 0) return;
      e.preventDefault();
      const next = buttons[Math.min(buttons.length - 1, Math.max(0, at + (e.key === "ArrowDown" ? 1 : -1)))];
      next.focus();
    });
  }

  function callback() {
    const picked = document.querySelector("input[name=callback]:checked");
    return picked ? picked.value : "none";
  }

  // A contact just logged joins the table of the agent's recent contacts, on top.
  function listContact(kind, topic, outcome, requestId) {
    const row = el("tr");
    const link = el("td");
    if (requestId) link.append(el("a", "#" + requestId, {href: "/staff/requests/" + requestId}));
    row.append(el("td", "just now"), el("td", kind), el("td", $("channel").value), el("td", topic),
               el("td", outcome), link);
    document.querySelector("#recent-contacts tbody").prepend(row);
    const none = $("no-recent");
    if (none) none.remove();
  }

  // --- 1. the caller and their earlier requests ------------------------------------------
  $("caller-form").addEventListener("submit", async e => {
    e.preventDefault();
    const status = $("caller-status");
    const list = $("caller-history");
    list.replaceChildren();
    const params = new URLSearchParams({phone: $("caller-phone").value, email: $("caller-email").value});
    try {
      const found = await call(api + "/callers?" + params);
      found.forEach(r => {
        const item = el("li");
        item.append(el("a", "#" + r.id, {href: "/staff/requests/" + encodeURIComponent(r.id)}),
                    el("span", " " + r.service_name + " — " + r.status + ", " + r.requested +
                               (r.address ? ", " + r.address : "")));
        list.append(item);
      });
      status.textContent = found.length + " earlier request(s) from this caller.";
    } catch (err) {
      status.textContent = "Cannot search: " + err.message;
    }
  });

  // --- 2. the knowledge base ------------------------------------------------------------------
  let lastArticle = null;
  arrowKeys($("kb-results"));
  $("kb-form").addEventListener("submit", async e => {
    e.preventDefault();
    const q = $("kb-q").value.trim();
    const list = $("kb-results");
    list.replaceChildren();
    if (!q) return;
    try {
      const hits = await call(api + "/kb?q=" + encodeURIComponent(q));
      hits.forEach(h => {
        const item = el("li");
        if (h.kind === "article") {
          const b = el("button", h.title, {type: "button", class: "kb-article", "data-slug": h.slug});
          b.addEventListener("click", () => readArticle(h.slug));
          item.append(b, el("span", " (article)"));
        } else {
          const b = el("button", h.title, {type: "button", class: "kb-service", "data-code": h.service_code});
          b.addEventListener("click", () => chooseService(h.service_code, h.title));
          item.append(b, el("span", " (service" + (h.group ? ": " + h.group : "") + ")"));
        }
        list.append(item);
      });
      $("kb-status").textContent = hits.length ? hits.length + " result(s)" : "Nothing matched.";
      if (!$("info-topic").value) $("info-topic").value = q;
      const first = list.querySelector("button");
      if (first) first.focus();
    } catch (err) {
      $("kb-status").textContent = "Cannot search: " + err.message;
    }
  });

  async function readArticle(slug) {
    const a = await call(api + "/kb/" + encodeURIComponent(slug));
    lastArticle = a;
    $("kb-article-title").textContent = a.title;
    $("kb-article-internal").hidden = a.public;
    $("kb-script").textContent = a.script || "(no script: read the article)";
    const body = $("kb-body");
    body.replaceChildren();
    a.blocks.forEach(b => {
      if (b.kind === "ul") {
        const ul = el("ul");
        b.lines.forEach(line => ul.append(el("li", line)));
        body.append(ul);
      } else {
        body.append(el("p", b.lines.join(" ")));
      }
    });
    const use = $("kb-use-service");
    use.hidden = !a.service;
    if (a.service) use.textContent = "Make a request: " + a.service.name;
    $("info-topic").value = a.title;
    $("kb-article").hidden = false;
    $("kb-article").focus();
  }
  $("kb-use-service").addEventListener("click", () => {
    if (lastArticle && lastArticle.service) chooseService(lastArticle.service.code, lastArticle.service.name);
  });

  // --- 3. information only -------------------------------------------------------------------
  $("info-form").addEventListener("submit", async e => {
    e.preventDefault();
    const result = $("info-result");
    try {
      const done = await call(api + "/info", {
        channel: $("channel").value, topic: $("info-topic").value,
        outcome: $("info-outcome").value, callback: callback()});
      result.textContent = "Contact logged (#" + done.contact_id + "): " + $("info-topic").value +
        ", " + $("info-outcome").value + ". No ticket made.";
      listContact("info", $("info-topic").value, $("info-outcome").value, null);
    } catch (err) {
      result.textContent = "Not logged: " + err.message;
    }
  });

  // --- 4. the request: service, questions, location, duplicates -----------------------------
  arrowKeys($("service-results"));
  $("service-q").addEventListener("keydown", async e => {
    if (e.key !== "Enter") return;
    e.preventDefault();  // Enter searches here; it never submits the request
    const q = $("service-q").value.trim();
    const list = $("service-results");
    list.replaceChildren();
    if (!q) return;
    try {
      const hits = await call(api + "/kb?q=" + encodeURIComponent(q));
      const seen = new Set();
      hits.filter(h => h.kind === "service" && !seen.has(h.service_code) && seen.add(h.service_code))
        .slice(0, 6).forEach(h => {
          const b = el("button", h.title + (h.group ? " (" + h.group + ")" : ""),
                       {type: "button", class: "service-choice", "data-code": h.service_code});
          b.addEventListener("click", () => chooseService(h.service_code, h.title));
          const item = el("li");
          item.append(b);
          list.append(item);
        });
      const first = list.querySelector("button");
      $("service-status").textContent = first ? list.children.length + " matching service(s): Up and Down to move, Enter to choose"
                                              : "No service matches: try other words.";
      if (first) first.focus();
    } catch (err) {
      $("service-status").textContent = "Cannot search: " + err.message;
    }
  });

  async function chooseService(code, name) {
    const service = await call(api + "/services/" + encodeURIComponent(code));
    chosen.service = service;
    $("service-chosen").textContent = service.name;
    $("service-results").replaceChildren();
    $("service-status").textContent = "";
    if (!$("info-topic").value) $("info-topic").value = service.name;
    renderQuestions(service.questions, service.notes);
    suggestDuplicates();
    const first = document.querySelector("#question-list input, #question-list select, #question-list textarea");
    (first || $("address-q")).focus();
  }

  function renderQuestions(questions, notes) {
    const box = $("question-list");
    box.replaceChildren(...notes.map(n => el("p", n, {class: "service-note"})));
    questions.forEach((q, i) => {
      const id = "question-" + i;
      const p = el("p");
      const label = el("label", q.description + (q.required ? " (required)" : ""), {for: id});
      let input;
      if (q.datatype === "singlevaluelist" || q.datatype === "multivaluelist") {
        input = el("select", null, {id: id});
        if (q.datatype === "multivaluelist") input.multiple = true;
        else input.append(el("option", "choose…", {value: ""}));
        q.values.forEach(v => input.append(el("option", v.name, {value: v.key})));
      } else if (q.datatype === "text") {
        input = el("textarea", null, {id: id, rows: "2", cols: "40"});
      } else {
        input = el("input", null, {id: id});
        if (q.datatype === "number") input.setAttribute("inputmode", "decimal");
      }
      input.dataset.code = q.code;
      if (q.required) input.setAttribute("aria-required", "true");
      p.append(label, " ", input);
      box.append(p);
    });
    $("questions").hidden = questions.length === 0 && notes.length === 0;
  }

  function answers() {
    const out = {};
    document.querySelectorAll("#question-list [data-code]").forEach(input => {
      const values = input.multiple ? [...input.selectedOptions].map(o => o.value) : [input.value];
      const kept = values.filter(v => v.trim() !== "");
      if (kept.length) out[input.dataset.code] = kept;
    });
    return out;
  }

  // The map: plain Leaflet (vendored); a click or Enter places the report there.
  const mapDiv = $("desk-map");
  const map = L.map(mapDiv, {keyboard: true}).setView(
    [Number(mapDiv.dataset.lat), Number(mapDiv.dataset.lon)], Number(mapDiv.dataset.zoom) || 12);
  if (mapDiv.dataset.tiles) L.tileLayer(mapDiv.dataset.tiles, {attribution: "configured tiles"}).addTo(map);
  const marker = L.layerGroup().addTo(map);
  const groups = L.layerGroup().addTo(map);

  function setPoint(lat, lon) {
    $("lat").value = Number(lat).toFixed(6);
    $("long").value = Number(lon).toFixed(6);
    marker.clearLayers();
    L.circleMarker([lat, lon], {radius: 8, color: "#08519c", weight: 3, fillOpacity: 0.4}).addTo(marker);
  }

  async function placeOnMap(lat, lon) {
    setPoint(lat, lon);
    const status = $("location-status");
    try {
      const found = await call(api + "/reverse?lat=" + lat + "&long=" + lon);
      if (found.address) {
        $("address-q").value = found.address;
        status.textContent = "Placed on the map, nearest address " + found.address + " (" +
          Math.round(found.distance_m) + " m).";
      } else {
        $("address-q").value = "";
        status.textContent = "Placed on the map; no address point within " + found.within_m + " m.";
      }
    } catch (err) {
      status.textContent = "Placed on the map (" + err.message + ").";
    }
    suggestDuplicates();
  }
  map.on("click", e => placeOnMap(e.latlng.lat, e.latlng.lng));
  mapDiv.addEventListener("keydown", e => {
    if (e.key !== "Enter" || e.target !== mapDiv) return;
    e.preventDefault();
    const c = map.getCenter();
    placeOnMap(c.lat, c.lng);
  });

  async function findAddress() {
    const status = $("location-status");
    const q = $("address-q").value.trim();
    if (!q) return;
    if (desk.dataset.geocode !== "1") {
      status.textContent = "Address search is not available: use the map.";
      return;
    }
    try {
      const found = await call("/api/geocode?q=" + encodeURIComponent(q));
      if (found.lat === null || found.lat === undefined) {
        status.textContent = "Not found: " + (found.reason || q);
        return;
      }
      $("address-q").value = found.address || q;
      setPoint(found.lat, found.long);
      map.setView([found.lat, found.long], Math.max(map.getZoom(), 16));
      status.textContent = "Located: " + (found.address || q) + " (" + found.match + ").";
      suggestDuplicates();
    } catch (err) {
      status.textContent = "Cannot search: " + err.message;
    }
  }
  $("address-find").addEventListener("click", findAddress);
  $("address-q").addEventListener("keydown", e => {
    if (e.key !== "Enter") return;
    e.preventDefault();  // Enter looks the address up; it never submits the request
    findAddress();
  });

  function setJoin(id) {
    chosen.join = id;
    document.querySelectorAll("#duplicate-list button.join").forEach(b =>
      b.setAttribute("aria-pressed", String(Number(b.dataset.id) === id)));
    $("join-status").textContent = id ? "The report will join request #" + id + " as a duplicate."
                                      : "The report will be a new request.";
  }

  async function suggestDuplicates() {
    const list = $("duplicate-list");
    list.replaceChildren();
    groups.clearLayers();
    setJoin(null);
    $("duplicates").hidden = true;
    if (!chosen.service || !$("lat").value) return;
    const params = new URLSearchParams({service_code: chosen.service.code,
                                        lat: $("lat").value, long: $("long").value});
    let found = [];
    try {
      found = await call(api + "/duplicates?" + params);
    } catch (err) {
      return;
    }
    found.forEach(g => {
      const item = el("li");
      const b = el("button", "Join #" + g.id, {type: "button", class: "join", id: "join-" + g.id, "data-id": String(g.id),
                                               "aria-pressed": "false"});
      b.addEventListener("click", () => setJoin(chosen.join === g.id ? null : g.id));
      item.append(b, el("span", " " + g.service_name + ", " + g.address + ", " + Math.round(g.distance_m) +
        " m away, " + g.reporter_count + " reporter(s), since " + g.requested +
        (g.automatic ? " — intake would join this one by itself" : "")));
      list.append(item);
      if (g.lat !== null && g.long !== null) {
        groups.addLayer(L.circleMarker([g.lat, g.long], {radius: 6, color: "#d7301f", weight: 2})
          .bindTooltip("#" + g.id));
      }
    });
    $("duplicates").hidden = found.length === 0;
  }
  arrowKeys($("duplicate-list"));

  $("request-form").addEventListener("submit", async e => {
    e.preventDefault();
    const error = $("request-error");
    error.textContent = "";
    if (!chosen.service) {
      error.textContent = "Choose a service first (search it above).";
      error.focus();
      return;
    }
    const body = {
      channel: $("channel").value, name: $("caller-name").value, phone: $("caller-phone").value,
      email: $("caller-email").value, callback: callback(), service_code: chosen.service.code,
      language: $("caller-language").value,
      lat: $("lat").value, long: $("long").value, address: $("address-q").value,
      description: $("description").value, answers: answers(), join_group: chosen.join,
      topic: $("info-topic").value || chosen.service.name};
    try {
      const photo = $("desk-photo").files[0];
      if (photo) body.photo = await dataUrl(photo);
      const made = await call(api + "/request", body);
      readBack(made);
      listContact("request", body.topic, "request made", made.id);
    } catch (err) {
      error.textContent = "Not made: " + err.message;
      error.focus();
    }
  });

  // A photo travels in the JSON body as a data: URL; the server reads its bytes.
  function dataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new Error("the photo could not be read"));
      reader.readAsDataURL(file);
    });
  }

  function readBack(made) {
    const live = $("readback-live");
    const number = el("p", null, {id: "tracking-number", class: "tracking-number"});
    number.append("Tracking number ", el("strong", String(made.id)));
    const text = el("p", made.service_name + (made.duplicate_of ? ", joined request #" + made.duplicate_of : "") +
                         ". Read the number back to the caller.");
    const link = el("a", "Open request #" + made.id, {href: made.url, id: "tracking-link"});
    live.replaceChildren(number, text, el("p"));
    live.lastChild.append(link);
    link.focus();
  }

  $("next-contact").addEventListener("click", () => {
    document.querySelectorAll("#desk form").forEach(f => f.reset());
    ["caller-history", "kb-results", "service-results", "question-list", "duplicate-list"]
      .forEach(id => $(id).replaceChildren());
    ["caller-status", "kb-status", "info-result", "service-status", "location-status", "request-error"]
      .forEach(id => { $(id).textContent = ""; });
    $("kb-article").hidden = true;
    $("questions").hidden = true;
    $("duplicates").hidden = true;
    $("service-chosen").textContent = "none yet";
    chosen.service = null;
    chosen.join = null;
    marker.clearLayers();
    $("lat").value = "";
    $("long").value = "";
    $("readback-live").replaceChildren(el("p", "The tracking number appears here when a request is made."));
    $("channel").focus();
  });
})();
