"""Moving a registry: ``export_registry`` writes an archive, ``import_registry`` restores one.
See docs/export-import.md for the format and the rules."""

from models_app.exchange.archive import ExchangeError
from models_app.exchange.export import ExportReport, export_registry
from models_app.exchange.history import verify_imported
from models_app.exchange.restore import ImportReport, import_registry

__all__ = [
    "ExchangeError", "ExportReport", "ImportReport", "export_registry", "import_registry",
    "verify_imported",
]  # fmt: skip
