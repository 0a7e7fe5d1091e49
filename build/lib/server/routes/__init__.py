"""One module per area; each exposes ``router`` (and optionally ``setup(app)``)."""
