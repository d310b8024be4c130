// Draws the H3 cells of a hotspot page on its folium map. The cells travel as JSON data
// (never as script source); tooltips are built by the server from numbers and fixed words.
(function () {
  "use strict";
  const mapDiv = document.querySelector(".folium-map");
  const data = document.getElementById("cell-data");
  const style = document.getElementById("cell-style");
  if (!mapDiv || !data || !style) return;
  const map = window[mapDiv.id];
  const cfg = JSON.parse(style.textContent);
  const layer = L.geoJSON(JSON.parse(data.textContent), {
    style: f => {
      const v = f.properties[cfg.key];
      const plain = v === cfg.plain;
      return {fillColor: cfg.colours[String(v)] || "#bdbdbd", color: "#555", weight: 0.3,
              fillOpacity: plain ? 0.25 : 0.7};
    },
    onEachFeature: (f, l) => l.bindTooltip(f.properties.tip, {sticky: true}),
  }).addTo(map);
  L.control.layers(null, {[cfg.name]: layer}, {collapsed: true}).addTo(map);
  window.geo311cells = layer;
})();
