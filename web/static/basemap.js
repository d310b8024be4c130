// geo311's own base map, drawn on every Leaflet map of a page when no tile server is set:
// district names, and the streets of the view once zoomed in (from /basemap/…).
(function () {
  "use strict";
  if (!window.L || !L.Map) return;  // a page without a map
  const me = document.currentScript;
  const STREETS_FROM_ZOOM = 14;

  L.Map.addInitHook(function () {
    const map = this;
    const streets = L.layerGroup();
    const labels = L.layerGroup();
    let asked = 0;
    map.whenReady(() => {
      streets.addTo(map);
      labels.addTo(map);
      map.getContainer().classList.add("own-basemap");
      fetch(me.dataset.labels).then(r => r.ok ? r.json() : null).then(data => {
        if (!data) return;
        data.features.forEach(f => {
          const label = L.marker([f.geometry.coordinates[1], f.geometry.coordinates[0]], {
            icon: L.divIcon({className: "district-label", html: "", iconSize: null}),
            interactive: false, keyboard: false});
          label.on("add", () => { label.getElement().textContent = f.properties.name; });
          labels.addLayer(label);
        });
      });
      draw();
    });
    map.on("moveend", draw);

    function draw() {
      const mine = ++asked;
      if (map.getZoom() < STREETS_FROM_ZOOM) { streets.clearLayers(); return; }
      const b = map.getBounds();
      const box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
        .map(v => v.toFixed(5)).join(",");
      fetch(me.dataset.streets + "?bbox=" + box).then(r => r.ok ? r.json() : null)
        .then(data => {
          if (!data || mine !== asked) return;  // a later move asked again
          streets.clearLayers();
          streets.addLayer(L.geoJSON(data, {
            style: {color: "#9a9a9a", weight: 2, opacity: 0.9},
            interactive: false}));
          map.getContainer().dataset.streets = String(data.features.length);
        });
    }
  });
})();
