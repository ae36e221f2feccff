"""Image I/O, degradation synthesis and datasets."""
