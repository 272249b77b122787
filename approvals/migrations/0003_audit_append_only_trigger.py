"""On PostgreSQL, refuse UPDATE and DELETE on the audit table at the database level.

The hash chain detects tampering after the fact; this trigger stops it through the ORM, psql or
any other client that is not a superuser bypassing triggers. TRUNCATE is left to the database's
privileges (the test runner flushes tables with it); `verify_audit` prints the chain's head hash
so operators can keep it elsewhere and notice a wiped table.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION approvals_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (%% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS approvals_auditevent_append_only ON approvals_auditevent;
CREATE TRIGGER approvals_auditevent_append_only
    BEFORE UPDATE OR DELETE ON approvals_auditevent
    FOR EACH ROW EXECUTE FUNCTION approvals_auditevent_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS approvals_auditevent_append_only ON approvals_auditevent;
DROP FUNCTION IF EXISTS approvals_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0002_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
