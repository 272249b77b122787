from django.core.management.base import BaseCommand, CommandError

from approvals.selectors import all_signatures


class Command(BaseCommand):
    help = (
        "Check every electronic signature against the audit event written with it: the event "
        "exists, is unmodified, has the hash the signature records, is the event of the "
        "signature's action, about its version, by its signer, and carries the same meaning, "
        "printed name, time, reason and content digest. Prints each signature that does not "
        "verify and exits non-zero if there is any. Run verify_audit too: it checks the chain "
        "the events belong to."
    )

    def handle(self, *args, **options):
        checked = failed = 0
        for signature in all_signatures():
            checked += 1
            if signature.verifies:
                continue
            failed += 1
            self.stdout.write(
                f"signature #{signature.pk} ({signature.printed_name}, {signature.meaning}, "
                f"{signature.model_name} v{signature.version_number}, audit event "
                f"#{signature.audit_seq}) does not verify: {'; '.join(signature.problems)}"
            )
        if failed:
            raise CommandError(f"{failed:,} of {checked:,} signatures do not verify.")
        self.stdout.write(self.style.SUCCESS(f"Signatures OK: {checked:,} verified."))
