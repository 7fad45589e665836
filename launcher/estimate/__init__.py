"""Time and cost estimates: the model, its calibration from run records, and the views."""
