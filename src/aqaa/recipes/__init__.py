"""Training recipes: plain scripts driven by a YAML config (`aqaa train <recipe> CONFIG`)."""
