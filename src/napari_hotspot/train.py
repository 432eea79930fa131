"""`python -m napari_hotspot.train`: entry point of the training code (see models/training/train.py)."""

from napari_hotspot.models.training.train import main

if __name__ == "__main__":
    main()
