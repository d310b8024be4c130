// Citizen map: open requests around a clicked or searched place, duplicate suggestions
// before a report is sent. Text from the server is only ever set as textContent.
(function () {
  "use strict";
  const mapDiv = document.querySelector(".folium-map");
  if (!mapDiv) return;
  const map = window[mapDiv.id];
  const around = L.layerGroup().addTo(map);
  const here = L.layerGroup().addTo(map);
  const radiusSelect = document.getElementById("around-radius");
  const list = document.getElementById("around-list");
  const summary = document.getElementById("around-summary");
  const message = document.getElementById("search-message");
  const service = document.getElementById("report-service");
  const latInput = document.getElementById("report-lat");
  const lonInput = document.getElementById("report-long");
  const suggestions = document.getElementById("suggestions");
  const suggestionList = document.getElementById("suggestion-list");
  const addressInput = document.getElementById("report-address");
  const addressNote = document.getElementById("address-from-map");
  let addressFromMap = false;  // true while the address shown is the one a click filled in
  window.geo311 = {map: map, around: around, ready: false};

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    return e;
  }

  function popup(r) {
    const box = el("div");
    const title = el("a", "#" + r.service_request_id + " " + r.service_name,
                     {href: "/requests/" + encodeURIComponent(r.service_request_id)});
    box.append(title, el("br"), el("span", r.status + ", reported " +
      r.requested_datetime.slice(0, 10) + ", " + r.reporter_count + " reporter(s)"));
    if (r.location_masked) box.append(el("br"), el("em", "approximate location"));
    if (r.address) box.append(el("br"), el("span", r.address));
    if (r.description) box.append(el("br"), el("span", r.description.slice(0, 200)));
    return box;
  }

  async function showAround(lat, lon) {
    const radius = radiusSelect.value;
    here.clearLayers();
    L.circle([lat, lon], {radius: Number(radius), color: "#2b8cbe", weight: 1,
                          fillOpacity: 0.05, interactive: false}).addTo(here);
    latInput.value = lat.toFixed(6);
    lonInput.value = lon.toFixed(6);
    const url = "/api/requests/around?lat=" + latInput.value + "&long=" + lonInput.value +
      "&radius_m=" + radius;
    const response = await fetch(url);
    const found = response.ok ? await response.json() : [];
    around.clearLayers();
    list.replaceChildren();
    found.forEach(r => {
      L.circleMarker([r.lat, r.long], {radius: 5, weight: 1, color: "#d7301f",
        fillColor: r.location_masked ? "#fdae6b" : "#d7301f", fillOpacity: 0.8})
        .bindPopup(popup(r)).addTo(around);
      const item = el("li");
      item.append(popup(r), el("span", " — " + Math.round(r.distance_m) + " m"));
      list.append(item);
    });
    summary.textContent = response.ok
      ? found.length + " open request(s) within " + radius + " m."
      : "Could not list requests here (" + response.status + ").";
    await Promise.all([suggest(), fillAddress(lat, lon)]);
    window.geo311.ready = true;
  }

  // "Send report" makes a report of its own; only a "Same problem" button joins a group.
  document.querySelector("#report button[type=submit]").addEventListener("click", () => {
    document.getElementById("report-join").value = "";
  });

  async function suggest() {
    document.getElementById("report-join").value = "";
    suggestionList.replaceChildren();
    suggestions.hidden = true;
    if (!service.value || !latInput.value) return;
    const url = "/api/requests/nearby?lat=" + latInput.value + "&long=" + lonInput.value +
      "&service_code=" + encodeURIComponent(service.value);
    const response = await fetch(url);
    if (!response.ok) return;
    const found = await response.json();
    found.forEach(r => {
      const item = el("li");
      const same = el("button", "Same problem: add my report to #" + r.service_request_id,
                      {type: "button", class: "join"});
      same.addEventListener("click", () => {  // the resident's choice: this group, by number
        document.getElementById("report-join").value = r.service_request_id;
        document.getElementById("report").requestSubmit();
      });
      item.append(popup(r), el("span", " — " + Math.round(r.distance_m) + " m away "), same);
      suggestionList.append(item);
    });
    suggestions.hidden = found.length === 0;
  }

  // The nearest known address fills the form's address, never over what the resident typed.
  async function fillAddress(lat, lon) {
    if (!addressInput || (addressInput.value && !addressFromMap)) return;
    const response = await fetch("/api/geocode/reverse?lat=" + lat.toFixed(6) +
                                 "&long=" + lon.toFixed(6));
    if (!response.ok) return;
    const r = await response.json();
    let text = "";
    if (r.address && r.address_distance_m <= 60) text = r.address;
    else if (r.street && r.street_distance_m <= 60) text = "near " + r.street;
    if (!text) return;
    addressInput.value = text;
    addressFromMap = true;
    addressNote.textContent = "Address filled in from the map: " + text +
      ". Change it if it is not right.";
  }
  if (addressInput) addressInput.addEventListener("input", () => {
    addressFromMap = false;
    addressNote.textContent = "";
  });

  map.on("click", e => {
    window.geo311.ready = false;
    showAround(e.latlng.lat, e.latlng.lng);
  });
  radiusSelect.addEventListener("change", () => {
    if (latInput.value) showAround(Number(latInput.value), Number(lonInput.value));
  });
  service.addEventListener("change", suggest);
  service.addEventListener("change", showQuestions);

  // The chosen service's questions, from its Open311 definition: the server asks the
  // same of every channel, so the form asks them before sending.
  async function showQuestions() {
    const box = document.getElementById("report-questions");
    box.querySelectorAll("label").forEach(l => l.remove());
    box.hidden = true;
    if (!service.value) return;
    const response = await fetch("/open311/v2/services/" +
                                 encodeURIComponent(service.value) + ".json");
    if (!response.ok) return;
    const definition = await response.json();
    const asked = (definition.attributes || []).filter(a => a.variable)
      .sort((a, b) => a.order - b.order);
    asked.forEach(a => {
      const label = el("label", a.description + (a.required ? " (required)" : ""));
      const key = "attribute[" + a.code + "]";
      let input;
      if (a.datatype === "singlevaluelist" || a.datatype === "multivaluelist") {
        const many = a.datatype === "multivaluelist";
        input = el("select", undefined, {name: key + (many ? "[]" : "")});
        if (many) input.multiple = true;
        input.append(el("option", "choose…", {value: ""}));
        (a.values || []).forEach(v => input.append(el("option", v.name, {value: v.key})));
      } else if (a.datatype === "text") {
        input = el("textarea", undefined, {name: key, rows: "2", cols: "30"});
      } else {
        input = el("input", undefined, {name: key});
        if (a.datatype === "number") input.setAttribute("inputmode", "decimal");
      }
      if (a.required) input.required = true;
      label.append(" ", input);
      box.append(label);
    });
    box.hidden = asked.length === 0;
  }

  const search = document.getElementById("search");
  const query = document.getElementById("search-q");
  const datalist = document.getElementById("search-suggestions");
  const unavailable = "Address search is not available on this server: click the map instead.";
  search.addEventListener("submit", async e => {
    e.preventDefault();
    message.textContent = "";
    if (search.dataset.geocode !== "1") {
      message.textContent = unavailable;
      return;
    }
    const response = await fetch("/api/geocode?q=" + encodeURIComponent(query.value));
    const found = await response.json().catch(() => null);
    if (!response.ok || !found || found.lat === undefined || found.lat === null) {
      const why = Array.isArray(found) && found[0] ? found[0].description
        : (found && found.reason) || response.statusText;
      message.textContent = "Address not found: " + (why || response.status);
      return;
    }
    message.textContent = "Found: " + (found.address || query.value) +
      (found.match ? " (" + found.match + ")" : "");
    document.getElementById("report-address").value = found.address || query.value;
    map.setView([found.lat, found.long], Math.max(map.getZoom(), 16));
    window.geo311.ready = false;
    showAround(found.lat, found.long);
  });
  let timer = null;
  query.addEventListener("input", () => {
    clearTimeout(timer);
    if (query.value.length < 3 || search.dataset.geocode !== "1") return;
    timer = setTimeout(async () => {
      const response = await fetch("/api/geocode/suggest?q=" + encodeURIComponent(query.value) +
                                   "&limit=5");
      if (!response.ok) return;
      const found = await response.json().catch(() => []);
      datalist.replaceChildren(...found.map(f => el("option", undefined,
                                                      {value: f.address || ""})));
    }, 250);
  });
})();
