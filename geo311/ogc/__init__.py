"""OGC API - Features, Part 1 Core, as plain documents: what ``/ogc`` serves, without HTTP.

Three kinds of collection: public requests (only public fields; never reporters),
each active boundary layer, and counts of requests per H3 cell at a few resolutions.
Every function here returns JSON-ready values; ``web/ogc.py`` only adapts them to
HTTP, so the paging, bbox and datetime rules are tested without a server.

- ``params``: the query parameters, each checked at the boundary, and the collections'
  value types;
- ``documents``: landing page, conformance, collection, items and OpenAPI documents;
- ``features``: the collections and their items, read from the store.
"""
