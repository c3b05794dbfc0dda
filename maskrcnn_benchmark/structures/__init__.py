"""Data structures shared by the data pipeline and the models: BoxList, ImageList, SegmentationMask."""
