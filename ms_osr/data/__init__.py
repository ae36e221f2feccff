"""Image I/O, degradation synthesis and datasets."""
from . import layouts  # noqa: F401  (registers the upstream tree layouts with datasets.build_source)
