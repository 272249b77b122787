"""The approval gates: what must hold before a version may be approved.

Evaluated live for the review page (files are not re-read there: that is done on approval) and
once more inside the approval's transaction, where artifacts are re-hashed from storage.
"""

from dataclasses import asdict, dataclass

from approvals.models import ReviewPolicy
from models_app import storage
from models_app.models import CardTemplate, ModelCard, ModelVersion, VersionDataset


@dataclass
class GateResult:
    key: str
    label: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def policy_for(model) -> ReviewPolicy:
    """The model's policy, or the defaults (unsaved) when none was set."""
    policy = ReviewPolicy.objects.filter(model=model).prefetch_related("gates").first()
    return policy or ReviewPolicy(model=model)


def _gates_of(policy: ReviewPolicy):
    return list(policy.gates.all()) if policy.pk else []


def evaluate(
    version: ModelVersion,
    *,
    policy: ReviewPolicy,
    production: ModelVersion | None,
    verify_files: bool = False,
) -> list[GateResult]:
    model = version.model
    specs = dict(model.metric_specs.values_list("name", "higher_is_better"))
    metrics = {(m.name, m.split): m.value for m in version.metrics.all()}
    results: list[GateResult] = []

    if policy.require_description:
        ok = bool(version.description.strip())
        results.append(
            GateResult(
                "description",
                "Version has a description",
                ok,
                "" if ok else "Describe what changed and why.",
            )  # fmt: skip
        )
    if policy.require_training_dataset:
        roles = {link.role for link in version.dataset_links.all()}
        ok = VersionDataset.Role.TRAIN in roles
        results.append(
            GateResult(
                "training_data",
                "Training dataset linked",
                ok,
                "" if ok else "Link the dataset the version was trained on.",
            )  # fmt: skip
        )
    card_gate = _card_gate(version)
    if card_gate is not None:
        results.append(card_gate)
    if policy.require_metrics:
        results.append(
            GateResult(
                "metrics",
                "At least one metric",
                bool(metrics),
                f"{len(metrics)} metric(s)" if metrics else "No metrics recorded.",
            )  # fmt: skip
        )

    prod_metrics = (
        {(m.name, m.split): m.value for m in production.metrics.all()}
        if production is not None and production.pk != version.pk
        else None
    )
    for gate in _gates_of(policy):
        name = f"{gate.metric}{f' on {gate.split}' if gate.split else ''}"
        value = metrics.get((gate.metric, gate.split))
        higher = model.higher_is_better(gate.metric, specs)
        if gate.threshold is not None:
            op = "≥" if higher else "≤"
            label = f"{name} {op} {gate.threshold:g}"
            if value is None:
                results.append(GateResult(f"threshold:{name}", label, False, "Metric missing."))
            else:
                ok = value >= gate.threshold if higher else value <= gate.threshold
                results.append(GateResult(f"threshold:{name}", label, ok, f"value {value:g}"))
        if gate.max_regression is not None:
            label = f"{name} no worse than production by more than {gate.max_regression:g}"
            key = f"regression:{name}"
            if prod_metrics is None:
                results.append(GateResult(key, label, True, "No production version to compare."))
            elif value is None:
                results.append(GateResult(key, label, False, "Metric missing."))
            elif (gate.metric, gate.split) not in prod_metrics:
                results.append(GateResult(key, label, True, "Production has no such metric."))
            else:
                base = prod_metrics[(gate.metric, gate.split)]
                worse_by = (base - value) if higher else (value - base)
                ok = worse_by <= gate.max_regression + 1e-12
                detail = (
                    f"{value:g} vs production {base:g} ({'worse' if worse_by > 0 else 'not worse'}"
                )
                detail += f" by {abs(worse_by):.4g})"
                results.append(GateResult(key, label, ok, detail))

    results.append(_dangerous_files_gate(version))
    if policy.verify_artifacts:
        results.append(_artifact_gate(version, verify_files))
    return results


def _card_gate(version: ModelVersion) -> GateResult | None:
    """Documentation: the model card sections the model's card template requires."""
    template = CardTemplate.objects.filter(model_id=version.model_id).first()
    required = template.required_sections if template else []
    if not required:
        return None
    card = ModelCard.objects.filter(version=version).first() or ModelCard(version=version)
    missing = card.missing(required)
    detail = (
        f"Missing: {', '.join(missing)}."
        if missing
        else f"{len(required)} required section(s) written."
    )
    return GateResult(
        "model_card", "Model card sections required by the template", not missing, detail
    )


def _dangerous_files_gate(version: ModelVersion) -> GateResult:
    """Every file that can run code when loaded was checked to its end and imports only what
    model formats legitimately contain (from the inspection made on upload). A file that could
    not be verified fails like a dangerous one: this gate fails closed."""
    label = "No file runs dangerous code when loaded"
    artifacts = list(version.artifacts.all())
    bad = [(a, a.unsafe_reasons) for a in artifacts]
    bad = [(a, reasons) for a, reasons in bad if reasons]
    if bad:
        detail = "; ".join(
            f"{a.path}: {'; '.join(reasons[:3])}"
            + (f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else "")
            for a, reasons in bad[:3]
        ) + (f"; and {len(bad) - 3} more file(s)" if len(bad) > 3 else "")
        return GateResult("dangerous_files", label, False, detail)
    loads_code = sum(1 for a in artifacts if a.executes_code)
    detail = f"{len(artifacts)} file(s) inspected"
    if loads_code:
        detail += (
            f"; {loads_code} execute code when loaded, importing only globals on the allowlist"
        )
    return GateResult("dangerous_files", label, True, detail + ".")


def _artifact_gate(version: ModelVersion, verify_files: bool) -> GateResult:

    artifacts = list(version.artifacts.all())
    label = "Files match their recorded sha256"
    if not artifacts:
        return GateResult("artifacts", label, False, "The version has no files.")
    if not verify_files:
        detail = f"{len(artifacts)} file(s); re-read from storage on approval."
        return GateResult("artifacts", label, True, detail)
    bad = []
    for a in artifacts:
        try:
            size, sha = storage.stored_digest(a.storage_key)
        except Exception:  # noqa: BLE001 (a missing or unreadable file fails the gate)
            bad.append(f"{a.path}: unreadable")
            continue
        if size != a.size or sha != a.sha256:
            bad.append(f"{a.path}: changed in storage")
    if bad:
        return GateResult("artifacts", label, False, "; ".join(bad))
    return GateResult("artifacts", label, True, f"{len(artifacts)} file(s) re-read and verified.")


def failing(results: list[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]
