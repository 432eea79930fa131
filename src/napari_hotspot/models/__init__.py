"""Networks (encoder, EG-Net, Gaze2Mask-Net, WCS tracker) and their weights."""
