"""PostgreSQL search indexes: GIN over the weighted tsvector, trigram GIN over the search terms.

On other databases (the SQLite demo) nothing is created; search falls back to
plain substring matching there (catalog/search.py).
"""

from django.db import migrations


class PostgresOnlySQL(migrations.RunSQL):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql=[
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                "CREATE INDEX catalog_variant_search_vector_gin ON catalog_modelvariant USING gin (search_vector)",
                "CREATE INDEX catalog_searchterm_word_trgm ON catalog_searchterm USING gin (word gin_trgm_ops)",
            ],
            reverse_sql=[
                "DROP INDEX IF EXISTS catalog_searchterm_word_trgm",
                "DROP INDEX IF EXISTS catalog_variant_search_vector_gin",
            ],
        ),
    ]
