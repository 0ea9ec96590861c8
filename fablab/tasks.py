"""django-q2 entry points of the project package. Each is safe to run twice."""

from fablab import services


def purge_expired_invitations() -> int:
    return services.invitations_purge_expired()


def prune_task_results() -> int:
    return services.task_results_prune()


def build_organization_export(export_id: int):
    export = services.organization_export_build(export_id=export_id)
    return export.status if export is not None else None


def expire_organization_exports() -> int:
    return services.organization_exports_expire()


def delete_organization(organization_id: int) -> dict | None:
    return services.organization_purge(organization_id=organization_id)
