"""django-q2 entry points (long-job cluster). Each takes ids and is safe to run twice."""

from reconstruction import services


def run_scan_job(job_id: int) -> str:
    return services.scan_job_run(job_id=job_id)


def purge_expired_scans() -> int:
    return services.scan_jobs_purge_expired()


def fail_stalled_scans() -> int:
    return services.scan_jobs_fail_stalled()


def send_scan_notice(job_id: int) -> bool:
    return services.scan_job_notify(job_id=job_id)
