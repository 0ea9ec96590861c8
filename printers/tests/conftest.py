import pytest

from fablab.tests.helpers import corpus_json


def bambu_corpus(name: str) -> dict:
    """A corpus file as the wire message `{"print": {...}}` (unwrapping the ha-bambulab test envelope)."""
    data = corpus_json("printers", "bambu", name)
    if "pushall" in data:
        return data["pushall"]
    if "push_all" in data:
        return {"print": data["push_all"]}
    return data


# A real report of each simulated Bambu model (for the P1S: a P1P's, the same P1-series firmware).
MODEL_REPORTS = {
    "X1C": "hab_x1c_4ams_ams2pro_amsht_finish_pushall_getversion.json",
    "P1S": "hab_p1p_ams_failed_pushall_getversion.json",
    "A1": "hab_a1_amslite_idle_pushall_getversion.json",
}


def bambu_corpus_report(name: str) -> tuple[dict, dict]:
    """(the `print` body, the get_version `info` body) of a corpus dump in ha-bambulab's envelope."""
    data = corpus_json("printers", "bambu", name)
    if "pushall" in data:
        return data["pushall"]["print"], data.get("get_version", {}).get("info", {})
    return data["push_all"], data.get("get_version", {})


@pytest.fixture
def signals_log():
    from printers.signals import job_finished, job_started

    log = []

    def on_start(sender, job, printer, adopted, **kwargs):
        log.append(("started", job.pk, adopted))

    def on_finish(sender, job, printer, outcome, **kwargs):
        log.append(("finished", job.pk, str(outcome)))

    job_started.connect(on_start, weak=False)
    job_finished.connect(on_finish, weak=False)
    yield log
    job_started.disconnect(on_start)
    job_finished.disconnect(on_finish)


from printers.tests.file_fixtures import bambu, ftps_sim, printer_file_settings, prusa, prusa_sim  # noqa: E402, F401
from printers.tests.mqtt import bambu_printer, broker, fast_mqtt, listener, sim  # noqa: E402, F401
