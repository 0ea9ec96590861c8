"""django-q2 entry points of the project package. Each is safe to run twice."""

from fablab import services


def purge_expired_invitations() -> int:
    return services.invitations_purge_expired()


def prune_task_results() -> int:
    return services.task_results_prune()
