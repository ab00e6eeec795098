"""Views of the calls app, one module per area."""
