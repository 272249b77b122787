from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Export and import"

    def ready(self):
        # start-up: both use the models, which are loaded only now
        from approvals.selectors import read_imported_events_with  # start-up
        from exchange.history import imported_events  # start-up

        # Imported signatures name events of an imported history, which this app keeps.
        read_imported_events_with(imported_events)
