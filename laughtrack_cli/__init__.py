"""The `laughtrack` command line (the edge: it may import flows; the library never imports it)."""
