"""A GIN index on the models' full-text search document (PostgreSQL only: the expression is
models.RegisteredModelQuerySet.search's, to_tsvector('english', name || ' ' || description);
SQLite's search is a substring match and has nothing to index)."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEX = GinIndex(SearchVector("name", "description", config="english"), name="model_search_idx")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("models_app", "RegisteredModel"), INDEX)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("models_app", "RegisteredModel"), INDEX)


class Migration(migrations.Migration):
    dependencies = [("models_app", "0019_grid_and_dataset_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
