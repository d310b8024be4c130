// Area alerts: draw an area by clicking its corners; the form sends it as GeoJSON.
(function () {
  "use strict";
  const mapDiv = document.querySelector(".folium-map");
  if (!mapDiv) return;
  const map = window[mapDiv.id];
  const field = document.getElementById("alerts-area");
  const status = document.getElementById("area-status");
  const district = document.getElementById("alerts-district");
  const drawn = L.layerGroup().addTo(map);
  let corners = [];

  function show(closed) {
    drawn.clearLayers();
    if (corners.length === 0) return;
    const shape = closed ? L.polygon(corners) : L.polyline(corners);
    drawn.addLayer(shape);
    corners.forEach(c => drawn.addLayer(L.circleMarker(c, {radius: 4})));
  }

  map.on("click", e => {
    if (field.value) { field.value = ""; corners = []; }
    corners.push([e.latlng.lat, e.latlng.lng]);
    show(false);
    status.textContent = corners.length + " corner(s); add more or finish the area.";
  });

  document.getElementById("area-finish").addEventListener("click", () => {
    if (corners.length < 3) {
      status.textContent = "An area needs at least 3 corners: click them on the map.";
      return;
    }
    const ring = corners.map(c => [c[1], c[0]]);
    ring.push(ring[0]);
    field.value = JSON.stringify({type: "Polygon", coordinates: [ring]});
    district.value = "";
    show(true);
    status.textContent = "Area drawn with " + corners.length + " corners.";
  });

  document.getElementById("area-clear").addEventListener("click", () => {
    corners = [];
    field.value = "";
    show(false);
    status.textContent = "Area cleared.";
  });

  district.addEventListener("change", () => {
    if (district.value) { corners = []; field.value = ""; show(false); }
  });
  window.geo311 = {map: map, ready: true};
})();
