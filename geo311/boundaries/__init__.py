"""Boundary layers from GIS files, checked before districts are assigned with them.

- ``reading``: ``read_layer``: read through GDAL, settle the CRS, pick id and name
  fields, repair what is unambiguous and refuse the rest with a precise ``LayerError``;
- ``files``: find the dataset in a folder, loose files or a zip (unpacked safely),
  and ``checksum`` a delivery;
- ``quality``: the per-feature report, overlaps, gaps and reach beyond the service area.
"""
