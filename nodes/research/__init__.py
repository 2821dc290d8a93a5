"""Research over the catalog: what the model says of each symbol at a time (``scan``)."""
