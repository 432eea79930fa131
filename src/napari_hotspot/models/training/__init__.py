"""Training code; never imported at run time."""
