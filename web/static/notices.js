// The emergency managers' page: draw a notice's area on the map (clicks, or the keyboard:
// arrow keys move the map, Enter adds its centre as a corner), kept as GeoJSON in the
// form; notices in force are drawn for context. Server text is only set as textContent.
(function () {
  "use strict";
  const mapDiv = document.getElementById("notice-map");
  if (!mapDiv) return;
  const $ = id => document.getElementById(id);
  const map = L.map(mapDiv, {keyboard: true}).setView(
    [Number(mapDiv.dataset.lat), Number(mapDiv.dataset.lon)], Number(mapDiv.dataset.zoom) || 11);
  if (mapDiv.dataset.tiles) L.tileLayer(mapDiv.dataset.tiles, {attribution: "configured tiles"}).addTo(map);
  const existing = L.layerGroup().addTo(map);
  const drawn = L.layerGroup().addTo(map);
  const output = $("area-geojson");
  const status = $("draw-status");
  let corners = [];  // [lat, lon] pairs, in the order they were added
  window.geo311Notices = {map: map, corners: () => corners.length};

  function chooseDrawn() {
    const radio = document.querySelector("input[name=area_source][value=draw]");
    if (radio) radio.checked = true;
  }

  function redraw() {
    drawn.clearLayers();
    corners.forEach(c => L.circleMarker(c, {radius: 5, color: "#b35806", weight: 2}).addTo(drawn));
    if (corners.length >= 3) {
      L.polygon(corners, {color: "#b35806", weight: 2, fillOpacity: 0.15}).addTo(drawn);
      const ring = corners.map(c => [Number(c[1].toFixed(6)), Number(c[0].toFixed(6))]);
      ring.push(ring[0]);
      output.value = JSON.stringify({type: "Polygon", coordinates: [ring]});
    } else if (corners.length > 0 || output.dataset.fromMap === "1") {
      output.value = "";
    }
    output.dataset.fromMap = corners.length ? "1" : "";
    status.textContent = corners.length === 0 ? "No corner yet."
      : corners.length + " corner(s)" + (corners.length < 3 ? ": add at least three." : ": the area is drawn.");
  }

  function addCorner(lat, lon) {
    corners.push([lat, lon]);
    chooseDrawn();
    redraw();
  }

  map.on("click", e => addCorner(e.latlng.lat, e.latlng.lng));
  mapDiv.addEventListener("keydown", e => {
    if (e.key !== "Enter" || e.target !== mapDiv) return;
    e.preventDefault();
    const c = map.getCenter();
    addCorner(c.lat, c.lng);
  });
  $("add-centre").addEventListener("click", () => {
    const c = map.getCenter();
    addCorner(c.lat, c.lng);
  });
  $("undo-corner").addEventListener("click", () => {
    corners.pop();
    redraw();
  });
  $("clear-area").addEventListener("click", () => {
    corners = [];
    output.dataset.fromMap = "1";
    redraw();
  });

  // A pasted area is drawn too, so what is posted is what is seen.
  function showPasted() {
    if (output.dataset.fromMap === "1" || !output.value.trim()) return;
    try {
      const shape = L.geoJSON(JSON.parse(output.value), {style: {color: "#b35806", weight: 2}});
      drawn.clearLayers();
      shape.addTo(drawn);
      map.fitBounds(shape.getBounds(), {maxZoom: 15});
      status.textContent = "Area read from the GeoJSON.";
    } catch (err) {
      status.textContent = "The GeoJSON cannot be read: " + err.message;
    }
  }
  output.addEventListener("change", () => { corners = []; output.dataset.fromMap = ""; chooseDrawn(); showPasted(); });
  showPasted();

  fetch("/api/notices").then(r => r.ok ? r.json() : null).then(found => {
    if (!found) return;
    L.geoJSON(found, {style: {color: "#d73027", weight: 1, dashArray: "4", fillOpacity: 0.05},
                      interactive: false}).addTo(existing);
  }).catch(() => {});
})();
