"""Evaluation: DAVIS J/F, hotspot and saliency metrics, interactive protocols."""
