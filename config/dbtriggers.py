"""Migration operations that protect a table at the database level: append-only (UPDATE and DELETE refused) or
kept (DELETE refused)."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def append_only(table: str) -> migrations.RunPython:
    def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(
                f"""
                CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN
                    RAISE EXCEPTION '{table} is append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
                END $$ LANGUAGE plpgsql;
                """,
                params=None,
            )
            schema_editor.execute(
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only();",
                params=None,
            )
        elif vendor == "sqlite":
            for op in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END;"
                )

    def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_append_only();")
        elif vendor == "sqlite":
            for op in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op};")

    return migrations.RunPython(forwards, backwards)


def no_delete(table: str) -> migrations.RunPython:
    """Rows of ``table`` are kept: DELETE is refused at the database level (UPDATE stays allowed, for records that
    move through states, like a report being reviewed). TRUNCATE, which the test suite's flush uses, is not a row
    operation and is not refused."""

    def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(
                f"""
                CREATE OR REPLACE FUNCTION {table}_no_delete() RETURNS trigger AS $$
                BEGIN
                    RAISE EXCEPTION '{table} rows are kept: % refused', TG_OP USING ERRCODE = 'restrict_violation';
                END $$ LANGUAGE plpgsql;
                """,
                params=None,
            )
            schema_editor.execute(
                f"CREATE TRIGGER {table}_kept BEFORE DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_no_delete();",
                params=None,
            )
        elif vendor == "sqlite":
            schema_editor.execute(
                f"CREATE TRIGGER {table}_kept BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are kept: DELETE refused'); END;"
            )

    def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_kept ON {table};")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {table}_no_delete();")
        elif vendor == "sqlite":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_kept;")

    return migrations.RunPython(forwards, backwards)
