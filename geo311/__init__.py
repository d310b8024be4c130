"""geo311: a GIS-centric service for city 311 requests.

The package is the domain core. It never imports Flask, folium or ``geo311_web``;
``geo311_web`` (the folder ``web/``) adapts it to HTTP and maps.
"""

__version__ = "0.1.0"
