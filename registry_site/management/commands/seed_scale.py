from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from registry_site.demo import scale
from registry_site.demo.users import DEMO_PASSWORD


class Command(BaseCommand):
    help = (
        "Load a registry at scale for benchmarks (bench/README.md): N models of M versions "
        "(plus one model of V versions), 4 metrics, 3 parameters and datasets per version, "
        "statuses, reviews, aliases with history, audit events, teams and grants. Bulk SQL "
        "(COPY on PostgreSQL) in one transaction, then VACUUM (ANALYZE)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--models", type=int, required=True, help="Number of models.")
        parser.add_argument("--versions", type=int, required=True, help="Versions per model.")
        parser.add_argument(
            "--big-model", type=int, default=0, help="Versions of one more, big, model."
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Empty EVERY table of the database first (manage.py flush), then load.",
        )
        parser.add_argument("--seed", type=int, default=16, help="Random seed (default 16).")

    def handle(self, *args, models, versions, big_model, reset, seed, **options):
        if models < 1 or versions < 1 or big_model < 0:
            raise CommandError("--models and --versions must be 1 or more, --big-model 0 or more.")
        if reset:
            self.stdout.write("Emptying the database (flush)…")
            call_command("flush", interactive=False, verbosity=0)
        sizes = scale.Sizes(models=models, versions=versions, big_model=big_model)
        self.stdout.write(
            f"Loading {sizes.models:,} models × {sizes.versions:,} versions"
            + (f" + one of {sizes.big_model:,}" if sizes.big_model else "")
            + f" = {sizes.total_versions:,} versions"
        )

        def progress(line: str) -> None:
            self.stdout.write(f"  {line}")
            self.stdout.flush()

        try:
            result = scale.seed(sizes, progress=progress, seed_value=seed)
        except scale.AlreadySeeded as e:
            raise CommandError(str(e)) from None
        for name, count in result.counts.items():
            self.stdout.write(f"  {name:<14} {count:>12,}")
        self.stdout.write(
            f"Personas (password {DEMO_PASSWORD}): {scale.ADMIN} (superuser), "
            f"{scale.REVIEWER} (reviews the models shared with team {scale.RISK_TEAM})."
        )
        if result.big_model:
            self.stdout.write(f"Big model: {result.big_model}")
        self.stdout.write(
            f"Dataset linked across models: {scale.HOLDOUT} (id {result.holdout_dataset_id})"
        )
        self.stdout.write(self.style.SUCCESS(f"Loaded in {result.seconds:.1f} s."))
