"""Moving a registry: ``export_registry`` writes an archive, ``import_registry`` restores one.
See docs/export-import.md for the format and the rules."""
