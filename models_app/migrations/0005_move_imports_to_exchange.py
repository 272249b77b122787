"""RegistryImport and ImportedAuditEvent moved to the exchange app. State only: the tables stay
(exchange's models name them with db_table), no row moves. exchange 0001 adds them back to the
migration state."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0004_drop_indexes_covered_by_others"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # The event first: it holds the foreign key to the import.
                migrations.DeleteModel(name="ImportedAuditEvent"),
                migrations.DeleteModel(name="RegistryImport"),
            ],
            database_operations=[],
        ),
    ]
