"""Training: models, losses, methods, the loop and checkpoints."""
