"""Evaluation: PAD metrics, run comparison and analysis (embeddings, alignment, Grad-CAM)."""
