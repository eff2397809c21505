"""In-memory adapters: the embedded default and the unit-test wiring."""
