"""Web forms for models and versions.

The forms only collect and shape input: a version's rows become the same metadata document the
CLI and the API send, checked by ``metadata.parse_metadata``; the services decide the rest. Their
``ValidationError`` messages are put back next to the field or row they name
(``VersionFormBundle.add_errors``), so every problem shows where it is.
"""

import json
import re

from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from core import jsonbody
from models_app.access import visible_models
from models_app.metadata import parse_metadata, parse_metric_value, parse_metrics_file
from models_app.models import RegisteredModel, VersionDataset, VersionParent
from models_app.names import validate_model_name

MAX_METRICS_FILE_BYTES = 1024 * 1024

# ---------------------------------------------------------------------------------------------
# Rows


class RowForm(forms.Form):
    """A formset row; a row left entirely blank is ignored (so is an initial row cleared)."""

    key_field = "name"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():  # the table header is the visible label
            field.widget.attrs.setdefault("aria-label", field.label or name.capitalize())

    def row(self) -> dict | None:
        data = getattr(self, "cleaned_data", None) or {}
        if not data.get(self.key_field):
            return None
        return data

    def clean(self):
        data = super().clean()
        filled = [n for n, v in data.items() if v not in (None, "") and n not in self.defaults()]
        if filled and not data.get(self.key_field):
            self.add_error(self.key_field, "Give this row a name, or clear it.")
        return data

    def defaults(self) -> set[str]:
        """Fields that always carry a value (selects), which alone do not fill a row."""
        return {n for n, f in self.fields.items() if isinstance(f, forms.ChoiceField)}


class MetricRowForm(RowForm):
    name = forms.CharField(max_length=250, required=False)
    value = forms.CharField(max_length=100, required=False)
    split = forms.CharField(max_length=100, required=False, help_text="e.g. test")
    # The training step the value was logged at (kept from an MLflow run when editing).
    step = forms.IntegerField(required=False, min_value=-(2**63) + 1, max_value=2**63 - 1)

    def clean_value(self):
        raw = self.cleaned_data.get("value", "")
        if raw == "":
            return None
        try:
            return parse_metric_value(raw)
        except ValidationError as e:
            raise ValidationError(f"The value {e.messages[0]}.") from None

    def clean(self):
        data = super().clean()
        if data.get("name") and data.get("value") is None and "value" not in self.errors:
            self.add_error("value", "A metric needs a value.")
        return data


class KeyValueRowForm(RowForm):
    key_field = "key"
    key = forms.CharField(max_length=250, required=False)
    value = forms.CharField(max_length=5000, required=False)


class ParamRowForm(KeyValueRowForm):
    value = forms.CharField(max_length=6000, required=False)


class DatasetRowForm(RowForm):
    name = forms.CharField(max_length=200, required=False)
    role = forms.ChoiceField(choices=VersionDataset.Role.choices, initial=VersionDataset.Role.TRAIN)
    uri = forms.CharField(label="URI", max_length=1000, required=False)
    digest = forms.CharField(max_length=200, required=False)


class ParentRowForm(RowForm):
    key_field = "model"
    model = forms.CharField(max_length=100, required=False)
    version = forms.IntegerField(min_value=1, required=False)
    relation = forms.ChoiceField(
        choices=VersionParent.Relation.choices, initial=VersionParent.Relation.RETRAINED
    )

    def clean(self):
        data = super().clean()
        if data.get("model") and not data.get("version") and "version" not in self.errors:
            self.add_error("version", "Which version of the parent model?")
        return data


class MetricDirectionRowForm(RowForm):
    key_field = "metric"
    metric = forms.CharField(max_length=250, required=False)
    direction = forms.ChoiceField(
        choices=[("higher", "Higher is better"), ("lower", "Lower is better")], initial="higher"
    )


class RowFormSet(forms.BaseFormSet):
    """Rows whose key must be unique (a tag key, a metric direction's name)."""

    unique = True

    def clean(self):
        seen = set()
        for form in self.forms:
            row = form.row() if not form.errors else None
            if row is None or not self.unique:
                continue
            key = row[form.key_field]
            if key in seen:
                form.add_error(form.key_field, f"{key} appears twice.")
            seen.add(key)

    def rows(self) -> list[tuple[forms.Form, dict]]:
        return [(f, f.row()) for f in self.forms if f.row() is not None]


def rows_formset(form, extra: int, unique: bool = True):
    return forms.formset_factory(
        form,
        formset=type("FormSet", (RowFormSet,), {"unique": unique}),
        extra=extra,
        max_num=1000,
        absolute_max=1000,
        validate_max=True,
    )


MetricFormSet = rows_formset(MetricRowForm, 5, unique=False)  # (name, split) checked by parser
ParamFormSet = rows_formset(ParamRowForm, 4)
TagFormSet = rows_formset(KeyValueRowForm, 3)
DatasetFormSet = rows_formset(DatasetRowForm, 2, unique=False)
ParentFormSet = rows_formset(ParentRowForm, 1, unique=False)
DirectionFormSet = rows_formset(MetricDirectionRowForm, 3)

# ---------------------------------------------------------------------------------------------
# Files


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        return list(data) if isinstance(data, list | tuple) else ([data] if data else [])


class FilesForm(forms.Form):
    files = MultipleFileField(
        required=False, help_text="Choose any number of files; each is stored under its name."
    )
    folder = MultipleFileField(
        required=False,
        widget=MultipleFileInput(attrs={"webkitdirectory": True}),
        help_text="Or a whole folder: its files keep their paths inside it.",
    )
    # The parallel "paths" field (one line per file, filled in by static/js/upload.js) is read
    # by uploads.incoming_files; the template renders it empty, never with the posted value.


# ---------------------------------------------------------------------------------------------
# A version's metadata

SCALARS = ("description", "framework", "framework_version", "python_version", "requirements",
           "source_run", "source_repository", "source_commit")  # fmt: skip


def _refuse_constant(name):
    raise ValueError(f"{name} is not allowed in JSON")


class VersionForm(forms.Form):
    description = forms.CharField(required=False, widget=forms.Textarea, help_text="Markdown.")
    framework = forms.CharField(required=False, max_length=100, help_text="e.g. scikit-learn")
    framework_version = forms.CharField(required=False, max_length=50)
    python_version = forms.CharField(required=False, max_length=20)
    source_run = forms.CharField(label="Training run", required=False, max_length=500)
    source_repository = forms.CharField(label="Code repository", required=False, max_length=500)
    source_commit = forms.CharField(label="Commit", required=False, max_length=64)
    requirements = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"class": "mono", "rows": 6}),
        help_text="requirements.txt: one package per line.",
    )
    signature = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"class": "mono", "rows": 6}),
        help_text='Input/output schema as a JSON object, e.g. {"inputs": [...]}.',
    )
    metrics_file = forms.FileField(
        required=False,
        allow_empty_file=True,
        help_text="Optional: metrics as JSON or CSV (name,value[,split]), added to the rows.",
    )

    def clean_signature(self):
        raw = self.cleaned_data["signature"].strip()
        if not raw:
            return None
        try:
            value = jsonbody.loads(raw, parse_constant=_refuse_constant)
        except ValueError as e:
            raise ValidationError(f"Not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise ValidationError("The signature must be a JSON object ({...}).")
        return value

    def clean_metrics_file(self):
        f = self.cleaned_data.get("metrics_file")
        if not f:
            return []
        if f.size > MAX_METRICS_FILE_BYTES:
            raise ValidationError("A metrics file is at most 1 MB.")
        return parse_metrics_file(f.read(), f.name)


class VersionFormBundle:
    """The version form with its row formsets (and the file inputs when registering)."""

    SECTIONS = {
        "metrics": MetricFormSet, "params": ParamFormSet, "tags": TagFormSet,
        "datasets": DatasetFormSet, "parents": ParentFormSet,
    }  # fmt: skip

    def __init__(self, data=None, files=None, *, initial=None, with_files=False):
        initial = initial or {}
        self.form = VersionForm(data, files, initial=initial.get("form"))
        self.sets = {
            name: cls(data, prefix=name, initial=initial.get(name))
            for name, cls in self.SECTIONS.items()
        }
        self.files_form = FilesForm(data, files) if with_files else None
        self.section_errors: dict[str, list[str]] = {}
        self.metadata = None
        self._rows: dict[str, list] = {}

    def __getattr__(self, name):  # templates: bundle.metrics, bundle.params, ...
        sets = self.__dict__.get("sets", {})
        if name in sets:
            return sets[name]
        raise AttributeError(name)

    def is_valid(self) -> bool:
        parts = [self.form, *self.sets.values()]
        if self.files_form is not None:
            parts.append(self.files_form)
        if not all([part.is_valid() for part in parts]):  # a list: validate every part
            return False
        try:
            self.metadata = parse_metadata(self._document())
        except ValidationError as e:
            self.add_errors(e)
            return False
        return True

    def _document(self) -> dict:
        cleaned = self.form.cleaned_data
        doc = {name: cleaned[name] for name in SCALARS}
        doc["signature"] = cleaned["signature"]
        rows = {name: formset.rows() for name, formset in self.sets.items()}
        self._rows = {name: [form for form, _ in pairs] for name, pairs in rows.items()}
        metrics = [
            {k: r.get(k) for k in ("name", "value", "split", "step")} for _, r in rows["metrics"]
        ]
        for m in cleaned["metrics_file"]:
            metrics.append({"name": m.name, "value": m.value, "split": m.split, "step": m.step})
            self._rows["metrics"].append(None)  # errors on these go to the file field
        doc["metrics"] = metrics
        doc["params"] = [{"key": r["key"], "value": r["value"]} for _, r in rows["params"]]
        doc["tags"] = [{"key": r["key"], "value": r["value"]} for _, r in rows["tags"]]
        doc["datasets"] = [
            {k: r[k] for k in ("name", "role", "uri", "digest")} for _, r in rows["datasets"]
        ]
        doc["parents"] = [
            {k: r[k] for k in ("model", "version", "relation")} for _, r in rows["parents"]
        ]
        return doc

    def add_errors(self, error: ValidationError) -> None:
        """Put the parser's or a service's messages next to what they are about."""
        if not hasattr(error, "error_dict"):
            self.form.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            for message in messages:
                self._add_error(key, message)

    def _add_error(self, key: str, message: str) -> None:
        indexed = re.match(r"^(\w+)\[(\d+)\](?:\.(\w+))?$", key)
        keyed = re.match(r"^(params|tags)\.(.*)$", key, re.S)
        if key in self.form.fields:
            self.form.add_error(key, message)
        elif key == "files" and self.files_form is not None:
            self.files_form.add_error("files", message)
        elif indexed and indexed.group(1) in self._rows:
            section, index, field = indexed.group(1), int(indexed.group(2)), indexed.group(3)
            rows = self._rows[section]
            form = rows[index] if index < len(rows) else None
            if form is None:
                target = "metrics_file" if section == "metrics" else None
                self.form.add_error(target, f"{key}: {message}")
            else:
                form.add_error(field if field in form.fields else None, message)
        elif keyed and keyed.group(1) in self._rows:
            section, row_key = keyed.groups()
            for form in self._rows[section]:
                if form.cleaned_data.get("key") == row_key.strip():
                    form.add_error(None, message)
                    return
            self.section_errors.setdefault(section, []).append(f"{row_key}: {message}")
        elif key in self.sets or key == "source":
            self.section_errors.setdefault(key, []).append(message)
        else:
            self.form.add_error(None, f"{key}: {message}" if key != "__all__" else message)


def version_initial(version, user) -> dict:
    """The bundle's initial data for editing a version. Parents ``user`` may not view, and
    deleted ones, are left out: saving keeps those links (services.version_update)."""
    form = {name: getattr(version, name) for name in SCALARS}
    if version.signature is not None:
        form["signature"] = json.dumps(version.signature, indent=2)
    return {
        "form": form,
        "metrics": [
            {
                "name": m.name,
                "value": repr(m.value),
                "split": m.split,
                "step": "" if m.step is None else m.step,
            }
            for m in version.metrics.all()
        ],  # fmt: skip
        "params": [{"key": p.key, "value": p.value} for p in version.params.all()],
        "tags": [{"key": t.key, "value": t.value} for t in version.tags.all()],
        "datasets": [
            {
                "name": d.dataset.name,
                "role": d.role,
                "uri": d.dataset.uri,
                "digest": d.dataset.digest,
            }  # fmt: skip
            for d in version.dataset_links.select_related("dataset")
        ],
        "parents": [
            {"model": p.parent.model.name, "version": p.parent.number, "relation": p.relation}
            for p in version.parent_links.filter(parent__model__in=visible_models(user))
            .select_related("parent__model")
            .order_by("pk")
        ],
    }


# ---------------------------------------------------------------------------------------------
# A registered model


class ModelForm(forms.Form):
    name = forms.CharField(
        help_text="Letters, digits, spaces, '-', '_' and '.'; at most 100 characters. "
        "Names that look alike (case, accents, look-alike letters) count as the same name."
    )
    description = forms.CharField(required=False, widget=forms.Textarea, help_text="Markdown.")
    task = forms.ChoiceField(choices=RegisteredModel.Task.choices)
    visibility = forms.ChoiceField(
        choices=RegisteredModel.Visibility.choices, widget=forms.RadioSelect
    )
    team = forms.ModelChoiceField(
        queryset=Group.objects.none(),
        required=False,
        help_text="A team you belong to; its members get access when it is shared with them.",
    )

    def __init__(self, *args, user, current_team: Group | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        teams = Group.objects.all() if user.is_superuser else user.groups.all()
        if current_team is not None:  # keep the current team choosable by its manager
            teams = Group.objects.filter(pk__in=teams.values("pk")) | Group.objects.filter(
                pk=current_team.pk
            )
        self.fields["team"].queryset = teams.order_by("name").distinct()
        self.fields["name"].widget.attrs["maxlength"] = 100

    def clean_name(self):
        validate_model_name(self.cleaned_data["name"])  # the same check the service makes
        return self.cleaned_data["name"]

    def add_errors(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            for message in messages:
                self.add_error(key if key in self.fields else None, message)
