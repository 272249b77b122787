"""RegistryImport and ImportedAuditEvent, moved here from models_app. State only: their tables
were created by models_app 0002 and keep their names (db_table), so no row moves."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        # The tables exist from models_app 0002; 0005 removes the models from models_app's state.
        ("models_app", "0005_move_imports_to_exchange"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RegistryImport",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("archive_sha256", models.CharField(max_length=64)),
                        ("imported_at", models.DateTimeField()),
                        ("imported_by", models.CharField(blank=True, max_length=150)),
                        (
                            "model_names",
                            models.JSONField(
                                default=list, help_text="Names of the models imported."
                            ),
                        ),
                        ("audit_scope", models.CharField(max_length=16)),
                        ("audit_events", models.PositiveIntegerField(default=0)),
                        ("audit_head_hash", models.CharField(blank=True, max_length=64)),
                    ],
                    options={
                        "db_table": "models_app_registryimport",
                        "ordering": ["-imported_at"],
                    },
                ),
                migrations.CreateModel(
                    name="ImportedAuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("seq", models.PositiveBigIntegerField()),
                        ("created_at", models.DateTimeField()),
                        ("actor_id", models.BigIntegerField(blank=True, null=True)),
                        ("actor_username", models.CharField(blank=True, max_length=150)),
                        ("action", models.CharField(max_length=64)),
                        ("model_id", models.BigIntegerField(blank=True, null=True)),
                        ("target_type", models.CharField(blank=True, max_length=32)),
                        ("target_id", models.CharField(blank=True, max_length=64)),
                        ("target_label", models.CharField(blank=True, max_length=300)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("reason", models.TextField(blank=True)),
                        ("ip_address", models.CharField(blank=True, max_length=45, null=True)),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64)),
                        (
                            "registered_model",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="models_app.registeredmodel",
                            ),
                        ),
                        (
                            "batch",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="events",
                                to="exchange.registryimport",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "models_app_importedauditevent",
                        "ordering": ["batch", "seq"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("batch", "seq"), name="imported_event_unique_seq"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
