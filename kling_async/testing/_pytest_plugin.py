"""pytest plugin (placeholder until the fake gateway lands)."""
