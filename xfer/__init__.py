"""xfer: multi-stage transfer-learning studies on chest X-rays (config → data → models → inits → train → track)."""
