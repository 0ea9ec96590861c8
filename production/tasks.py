"""django-q2 entry points of production. Each takes ids and is safe to run twice (even at the same time).

Downloads from printers into the catalog were queued as `printers.tasks.run_file_import` before this
work moved to production. That name is gone on purpose (the printers app must not reach into
production, not even through an alias): the migration that moved the downloads marks every download
still waiting or running at that moment as failed, with a message asking to request it again, and a
task of the old name still in the broker then fails once in the task cluster ("Failed tasks" in the
admin, named "printer file download <id>") without touching anything.
"""

from production import services


def run_file_import(import_id: int) -> str:
    """Download one requested file from a printer into the catalog (services.printer_file_import_request)."""
    return services.printer_file_import_run(import_id=import_id)


def dispatch_queue() -> int:
    """Send queued jobs to the free printers that have automatic dispatch on (the schedule, every minute)."""
    return services.print_jobs_dispatch_auto()


def recheck_queue() -> int:
    """Check the feasibility of every waiting job again after stock or printers changed
    (services.print_jobs_recheck_request queues it); returns how many jobs changed."""
    return services.print_jobs_recheck_run()


def replan_queue() -> int:
    """Plan the queue again after the queue, stock or printers changed (services.print_queue_replan_request
    queues it); returns how many jobs got a plan."""
    return services.print_queue_replan_run()
