"""Which rows and files an organization owns, read from the models' own foreign keys.

No domain app is imported: the app registry says which models carry a foreign key to `Organization`
(the organization's own rows), which carry `storage_owner = "org-<id>"` (files kept per owner, such as
sliced files), and which hang from those rows with `on_delete=CASCADE` (a scan's photos, a model's
variants and versions, a sliced file's thumbnails). A model added later is covered without a change here.

A descendant that carries an organization of its own must name this organization (or none), so a row of
another organization never comes along through a shared parent.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from fablab.models import Organization
from fablab.roles import DOMAIN_APPS

PROJECT_APPS = frozenset({"fablab", *DOMAIN_APPS})
# Columns an export never contains: credentials and the hashes that stand for them.
SECRET_FIELDS = frozenset({"password", "hashed_key", "token_hash", "secret", "webhook_secret"})
# How deep CASCADE chains are followed (organization row -> child -> grandchild ...).
MAX_DEPTH = 6


def storage_owner(organization: Organization) -> str:
    """The owner part of the organization's file paths (`scans/org-<id>/...`, `catalog/org-<id>/...`)."""
    return f"org-{organization.pk}"


def _project_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models()
            if model._meta.app_label in PROJECT_APPS and not model._meta.proxy and model is not Organization]


def organization_fields(model: type[models.Model]) -> list[models.ForeignKey]:
    """The model's concrete foreign keys (and one-to-ones) to Organization."""
    return [f for f in model._meta.concrete_fields if f.is_relation and f.related_model is Organization]


def file_fields(model: type[models.Model]) -> list[models.FileField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]


@dataclass
class OwnedRows:
    """The primary keys an organization owns, by model, in the order they were found (parents first)."""

    organization: Organization
    pks: dict[type[models.Model], set] = field(default_factory=lambda: defaultdict(set))

    def model_list(self) -> list[type[models.Model]]:
        return [model for model, pks in self.pks.items() if pks]

    def queryset(self, model: type[models.Model]) -> models.QuerySet:
        return model._base_manager.filter(pk__in=sorted(self.pks.get(model, ()))).order_by("pk")

    def rows(self) -> Iterator[tuple[type[models.Model], models.Model]]:
        for model in self.model_list():
            for row in self.queryset(model).iterator(chunk_size=500):
                yield model, row

    def file_names(self, *, exclude: tuple = ()) -> list[str]:
        """The stored file names of every owned row, each once."""
        names: dict[str, None] = {}
        for model in self.model_list():
            if model in exclude:
                continue
            fields = [f.attname for f in file_fields(model)]
            if not fields:
                continue
            for values in self.queryset(model).values_list(*fields):
                for name in values:
                    if name:
                        names[name] = None
        return list(names)


def owned_roots(organization: Organization) -> list[tuple[type[models.Model], models.ForeignKey | None, set]]:
    """The rows that name the organization themselves: (model, the field naming it or None, pks)."""
    roots = []
    owner = storage_owner(organization)
    for model in _project_models():
        for fk in organization_fields(model):
            pks = set(model._base_manager.filter(**{fk.name: organization}).values_list("pk", flat=True))
            roots.append((model, fk, pks))
        names = {f.name for f in model._meta.concrete_fields}
        if "storage_owner" in names:
            pks = set(model._base_manager.filter(storage_owner=owner).values_list("pk", flat=True))
            roots.append((model, None, pks))
    return roots


def _cascade_children(model: type[models.Model]) -> list[tuple[type[models.Model], models.ForeignKey]]:
    children = []
    for candidate in _project_models():
        for f in candidate._meta.concrete_fields:
            if (f.is_relation and f.related_model is model and f.remote_field is not None
                    and f.remote_field.on_delete is models.CASCADE):
                children.append((candidate, f))
    return children


def owned_rows(organization: Organization) -> OwnedRows:
    """Every row the organization owns: its roots and, through CASCADE, what hangs from them."""
    owned = OwnedRows(organization=organization)
    frontier: dict[type[models.Model], set] = defaultdict(set)
    for model, _fk, pks in owned_roots(organization):
        owned.pks[model] |= pks
        frontier[model] |= pks
    for _depth in range(MAX_DEPTH):
        found: dict[type[models.Model], set] = defaultdict(set)
        for parent, parent_pks in frontier.items():
            if not parent_pks:
                continue
            for child, fk in _cascade_children(parent):
                rows = child._base_manager.filter(**{f"{fk.name}__in": sorted(parent_pks)})
                for org_fk in organization_fields(child):
                    rows = rows.filter(models.Q(**{org_fk.name: organization})
                                       | models.Q(**{f"{org_fk.name}__isnull": True}))
                new = set(rows.values_list("pk", flat=True)) - owned.pks[child]
                if new:
                    owned.pks[child] |= new
                    found[child] |= new
        if not found:
            break
        frontier = found
    return owned


def row_data(model: type[models.Model], row: models.Model) -> dict:
    """A row's columns by field name as plain values (a foreign key as the id it points to, a file as its
    stored name), secrets left out."""
    data = {}
    for f in model._meta.concrete_fields:
        if f.name in SECRET_FIELDS:
            continue
        value = f.value_from_object(row)
        if isinstance(f, models.FileField):
            value = value.name if value else ""
        data[f.name] = value
    return data
