"""Second-stage heads of the R-CNN detectors."""
