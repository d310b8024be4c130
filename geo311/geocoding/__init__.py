"""Offline geocoding over the city's own reference layers; pure, no store, no web.

- ``parsing``: read an address or intersection as typed into normal form
  (``4853 s wood`` -> ``4853 S WOOD ST``), with usaddress and the city's street types.
- ``references``: read the reference layers GIS staff have (address points,
  intersections, TIGER centrelines, OpenStreetMap) into frames for the store.
- ``streets``: the in-memory street index built from those frames.
- ``cascade``: ``Geocoder``, the cascade from exact point to interpolation,
  centreline range, intersection and the address grid, with match type and score.
- ``suggest``: completions for a search box; ``reverse``: nearest address and street.
- ``side``: the address grid and which side of the street a number is on.
- ``batch``: geocode a CSV file; ``remote``: an optional remote geocoder fallback.

The store's learned addresses and its cached geocoder are a service,
``geo311.gazetteer``.
"""
