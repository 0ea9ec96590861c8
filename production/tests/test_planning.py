"""The farm planner without the database: the exchange format, greedy and CP-SAT plans, the checker, the command."""

import itertools
import json
import random
import time
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from production.management.commands.plan_schedule import Command
from production.planning import (
    InstanceError,
    check_plan,
    load_instance,
    parse_instance,
    parse_plan,
    plan,
    plan_greedy,
)
from production.planning.balance import AssignmentSearch
from production.planning.bounds import lp_bound, makespan_lower_bound
from production.planning.cpsat import AssignmentModel
from production.planning.greedy import best_greedy_schedule
from production.planning.problem import Problem, Schedule
from production.planning.search import LocalSearch, improve

MONDAY_8 = "2025-03-03T08:00:00+00:00"  # a Monday
HOUR = 3600


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def planned(instance, **kwargs) -> dict:
    """The plan as JSON gives it back, after the checker found nothing wrong."""
    result = json.loads(json.dumps(plan(instance, **kwargs).to_dict()))
    assert check_plan(instance, result) == []
    return result


def rows(result: dict) -> dict:
    return {a["job"]: (a["printer"], at(a["start"]), at(a["end"])) for a in result["assignments"]}


# --- random instances -------------------------------------------------------------------------------


@st.composite
def instances(draw):
    printers = [f"p{i}" for i in range(draw(st.integers(1, 4)))]
    families = ["PLA", "PETG", "TPU"][: draw(st.integers(1, 3))]
    shifts = []
    if draw(st.booleans()):
        for weekday in draw(st.sets(st.integers(0, 6), min_size=1, max_size=7)):
            start = draw(st.integers(0, 22))
            length = draw(st.integers(1, 14))
            end = (start + length) % 24
            shifts.append({"weekday": weekday, "start": f"{start:02d}:00",
                           "end": "24:00" if end == 0 else f"{end:02d}:{draw(st.sampled_from(['00', '30']))}"})
    jobs = []
    for index in range(draw(st.integers(1, 9))):
        eligible = draw(st.sets(st.sampled_from(printers), min_size=1))
        due = draw(st.one_of(st.none(), st.integers(1, 72)))
        jobs.append({
            "id": f"j{index}",
            "durations_s": {p: draw(st.integers(60, 10 * HOUR)) for p in sorted(eligible)},
            "family": draw(st.sampled_from(families)),
            "due": (at(MONDAY_8) + timedelta(hours=due)).isoformat() if due else None,
            "weight": draw(st.sampled_from([0.5, 1, 3])),
        })
    return parse_instance({
        "now": MONDAY_8,
        "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin"])),
        "changeover_s": draw(st.sampled_from([0, 600, 1800])),
        "shifts": shifts,
        "printers": [{"id": p, "available_at": (at(MONDAY_8) + timedelta(minutes=draw(st.integers(-60, 300))))
                      .isoformat(), **({"family": draw(st.sampled_from(families))} if draw(st.booleans()) else {})}
                     for p in printers],
        "jobs": jobs,
    })


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances())
def test_random_plans_are_feasible_and_never_worse_than_greedy(instance):
    result = planned(instance, time_limit_s=1)
    baseline = json.loads(json.dumps(plan_greedy(instance).to_dict()))
    assert check_plan(instance, baseline) == []
    assert result["solver"] in ("cp-sat", "local-search", "greedy")
    mine = (result["weighted_lateness_s"], result["makespan_s"])
    theirs = (baseline["weighted_lateness_s"], baseline["makespan_s"])
    assert mine[0] < theirs[0] - 1e-6 or (mine[0] <= theirs[0] + 1e-6 and mine[1] <= theirs[1])
    assert result["lower_bound_makespan_s"] <= result["makespan_s"]


def _optimal_makespan(problem: Problem) -> int:
    """The best makespan by trying every assignment and every order on each printer (tiny instances)."""
    best = None
    for printers in itertools.product(*(sorted(d) for d in problem.durations)):
        finish = 0
        for printer in range(problem.n_printers):
            jobs = [j for j, p in enumerate(printers) if p == printer]
            shortest = None
            for order in itertools.permutations(jobs):
                free, family = problem.ready[printer], problem.printer_family[printer]
                for job in order:
                    free = problem.calendar.next_start(free + problem.changeover_between(family, problem.family[job]))
                    free += problem.durations[job][printer]
                    family = problem.family[job]
                shortest = free if shortest is None else min(shortest, free)
            finish = max(finish, shortest if jobs else 0)
        best = finish if best is None else min(best, finish)
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances(), seed=st.integers(0, 1000))
def test_the_lower_bounds_never_exceed_the_optimum(instance, seed):
    # Up to 5 jobs on up to 2 printers: few enough to try every plan.
    data = instance.to_dict()
    data["printers"] = data["printers"][:2]
    kept = {p["id"] for p in data["printers"]}
    jobs = []
    for job in data["jobs"][:5]:
        durations = {p: d for p, d in job["durations_s"].items() if p in kept}
        jobs.append({**job, "durations_s": durations or {data["printers"][seed % len(kept)]["id"]: 3600}})
    small = parse_instance({**data, "jobs": jobs})
    problem = Problem(small)
    optimum = _optimal_makespan(problem)
    assert makespan_lower_bound(problem) <= optimum
    # The LP without changeover terms (used where the other is too slow) is weaker, never above it.
    assert lp_bound(problem, changeovers=False) <= lp_bound(problem) + 1e-3 <= optimum + 1e-3
    _printers, proven = AssignmentModel(problem, best_greedy_schedule(problem)).solve(deadline=time.monotonic() + 2)
    assert proven <= optimum
    result = planned(small, time_limit_s=2)
    assert result["lower_bound_makespan_s"] <= optimum <= result["makespan_s"]


def test_a_printer_holding_no_family_gets_one_free_changeover_not_more():
    # Five one-minute jobs, two of them only on p0, a ten-minute changeover, printers holding nothing:
    # the best plan needs 150 s on p0 plus nothing else, and the LP with changeovers must not drop
    # below the LP without them by crediting a free changeover to a printer it barely uses.
    both, only = {"p0": 60, "p1": 60}, {"p0": 60}
    instance = parse_instance({
        "now": "2025-03-03T08:00:00+00:00", "changeover_s": 600, "shifts": [],
        "printers": [{"id": "p0", "available_at": "2025-03-03T08:00:00+00:00"},
                     {"id": "p1", "available_at": "2025-03-03T08:00:00+00:00"}],
        "jobs": [{"id": f"j{i}", "durations_s": both if i < 3 else only, "family": "PLA", "due": None,
                  "weight": 0.5} for i in range(5)],
    })
    problem = Problem(instance)
    assert lp_bound(problem, changeovers=False) == pytest.approx(150, abs=0.01)
    assert lp_bound(problem) == pytest.approx(150, abs=0.01)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances())
def test_local_search_keeps_plans_valid_and_never_worse(instance):
    problem = Problem(instance)
    start = best_greedy_schedule(problem)
    found = improve(problem, start, time.monotonic() + 1)
    rows = [{"job": problem.job_ids[j], "printer": problem.printer_ids[found.printer[j]],
             "start": problem.at(found.start[j]).isoformat(), "end": problem.at(found.end[j]).isoformat()}
            for j in range(problem.n_jobs)]
    lateness, makespan, late = problem.score(found)
    result = {"assignments": rows, "makespan_s": makespan, "weighted_lateness_s": lateness, "late_jobs": late,
              "lower_bound_makespan_s": 0}
    assert check_plan(instance, result) == []
    before = problem.score(start)
    assert lateness < before[0] - 1e-6 or (lateness <= before[0] + 1e-6 and makespan <= before[1])


def test_local_search_balances_the_printers():
    # Greedy by due date puts the two long jobs on one printer; one move fixes that.
    instance = parse_instance({
        "now": MONDAY_8,
        "printers": [{"id": "a"}, {"id": "b"}],
        "jobs": [{"id": "s1", "durations_s": {"a": HOUR, "b": HOUR}},
                 {"id": "s2", "durations_s": {"a": HOUR, "b": HOUR}},
                 {"id": "l1", "durations_s": {"a": 4 * HOUR, "b": 4 * HOUR}},
                 {"id": "l2", "durations_s": {"a": 4 * HOUR, "b": 4 * HOUR}}],
    })
    problem = Problem(instance)
    unbalanced = Schedule(printer=[0, 0, 1, 1], start=[0, HOUR, 0, 4 * HOUR], end=[HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR])
    assert problem.score(improve(problem, unbalanced, time.monotonic() + 1))[1] == 5 * HOUR


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances(), seed=st.integers(0, 1000))
def test_the_assignment_search_prices_printers_as_they_run(instance, seed):
    # Without shifts and due dates, the end the assignment search gives each printer is the end
    # of the printer run family block by family block; moves priced in constant time agree with it.
    problem = Problem(instance)
    problem.calendar.always = True
    problem.due = [None] * problem.n_jobs
    rng = random.Random(seed)
    search = AssignmentSearch(problem, [rng.choice(problem.eligible[j]) for j in range(problem.n_jobs)], seed=seed)
    for _ in range(5):
        job = rng.randrange(problem.n_jobs)
        p, q = search.printer[job], rng.choice(problem.eligible[job])
        if q != p:
            priced = (search._end_after(p, job, None), search._end_with(q, job))
            search._move(job, q)
            assert priced == (search.end[p], search.end[q])
    schedule = LocalSearch(problem, Schedule(printer=search.printer, start=[0] * problem.n_jobs,
                                             end=[0] * problem.n_jobs), by_printer=True).schedule()
    for p in range(problem.n_printers):
        ends = [schedule.end[j] for j in range(problem.n_jobs) if schedule.printer[j] == p]
        assert max(ends, default=0) == search.end[p]
    assert problem.score(schedule)[1] == search.makespan()


def test_local_search_takes_a_late_job_on_along_a_chain():
    # l is an hour late behind x on a (x fits only a). On b, y (due at 4 h) leaves l no room, and
    # y alone on c pushes the makespan out: only moving l to b while y goes on to c puts every
    # job on time.
    def due(hours):
        return (at(MONDAY_8) + timedelta(hours=hours)).isoformat()

    instance = parse_instance({"now": MONDAY_8, "printers": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "jobs": [
        {"id": "x", "durations_s": {"a": 4 * HOUR}, "due": due(4)},
        {"id": "l", "durations_s": {"a": 2 * HOUR, "b": 2 * HOUR}, "due": due(5)},
        {"id": "y", "durations_s": {"b": 4 * HOUR, "c": 4 * HOUR}, "due": due(4)},
        {"id": "z", "durations_s": {"c": 3 * HOUR}, "due": due(10)},
    ]})
    problem = Problem(instance)
    late = Schedule(printer=[0, 0, 1, 2], start=[0, 4 * HOUR, 0, 0], end=[4 * HOUR, 6 * HOUR, 4 * HOUR, 3 * HOUR])
    assert problem.score(late)[2] == 1
    search = LocalSearch(problem, late)
    search._descend(time.monotonic() + 5)
    fixed = search.schedule()
    assert problem.score(fixed)[:1] == (0.0,)
    assert fixed.printer == [0, 1, 2, 2]


def _always_staffed(printers, jobs, changeover_s=0):
    return Problem(parse_instance({"now": MONDAY_8, "changeover_s": changeover_s, "printers": printers,
                                   "jobs": jobs}))


def test_the_assignment_search_swaps_where_no_single_move_helps():
    # a runs 3 h + 3 h, b 2 h + 2 h: moving any job makes the other printer end later than 6 h;
    # swapping a 3 h job for a 2 h one ends both at 5 h.
    problem = _always_staffed([{"id": "a"}, {"id": "b"}], [
        {"id": name, "durations_s": {"a": hours * HOUR, "b": hours * HOUR}}
        for name, hours in (("x1", 3), ("x2", 3), ("y1", 2), ("y2", 2))])
    search = AssignmentSearch(problem, [0, 0, 1, 1])
    search.descend(time.monotonic() + 5)
    assert search.makespan() == 5 * HOUR
    assert sorted(search.printer[:2]) == [0, 1]


def test_the_assignment_search_passes_a_job_on_along_a_chain():
    # x can leave a only for b, which then ends too late unless y (which fits b and c, not a)
    # moves on to c: a chain of two moves, neither of which helps alone, nor does a swap.
    problem = _always_staffed([{"id": "a"}, {"id": "b"}, {"id": "c"}], [
        {"id": "x", "durations_s": {"a": 3 * HOUR, "b": 3 * HOUR}},
        {"id": "w", "durations_s": {"a": 3 * HOUR}},
        {"id": "y", "durations_s": {"b": 3 * HOUR, "c": 3 * HOUR}},
        {"id": "v", "durations_s": {"b": 2 * HOUR}},
        {"id": "z", "durations_s": {"c": HOUR}},
    ])
    search = AssignmentSearch(problem, [0, 0, 1, 1, 2])
    search.descend(time.monotonic() + 5)
    assert search.printer == [1, 0, 2, 1, 2]
    assert search.makespan() == 5 * HOUR


def test_the_assignment_search_moves_a_job_to_where_its_family_runs():
    # The PETG job on a costs a changeover there; on c, which runs PETG, it costs none, so it
    # ends earlier there than on b (PLA) although b is free sooner.
    problem = _always_staffed(
        [{"id": "a", "family": "PLA"}, {"id": "b", "family": "PLA"}, {"id": "c", "family": "PETG"}],
        [{"id": "pla", "durations_s": {"a": 4 * HOUR}, "family": "PLA"},
         {"id": "petg", "durations_s": {"a": 2 * HOUR, "b": 2 * HOUR, "c": 2 * HOUR}, "family": "PETG"},
         {"id": "b1", "durations_s": {"b": 3 * HOUR}, "family": "PLA"},
         {"id": "c1", "durations_s": {"c": 3 * HOUR + 600}, "family": "PETG"}],
        changeover_s=1800)
    search = AssignmentSearch(problem, [0, 0, 1, 2])
    assert search.makespan() == 6 * HOUR + 1800
    search.descend(time.monotonic() + 5)
    assert search.printer[1] == 2
    assert search.makespan() == 5 * HOUR + 600


# --- hand-made cases ----------------------------------------------------------------------------------


def test_a_job_starts_only_inside_a_shift_and_runs_on_past_its_end():
    instance = parse_instance({
        "now": MONDAY_8,
        "shifts": [{"weekday": 0, "start": "09:00", "end": "10:00"}, {"weekday": 2, "start": "07:30", "end": "08:00"}],
        "printers": [{"id": "a"}],
        "jobs": [{"id": "long", "durations_s": {"a": 5 * HOUR}, "due": "2025-03-03T14:00:00Z", "weight": 2},
                 {"id": "next", "durations_s": {"a": HOUR}}],
    })
    result = rows(planned(instance, time_limit_s=1))
    assert result["long"][1:] == (at("2025-03-03T09:00:00Z"), at("2025-03-03T14:00:00Z"))
    # Monday's shift is over when the printer is free: Wednesday 07:30 is the next start.
    assert result["next"][1] == at("2025-03-05T07:30:00Z")


def test_overnight_shifts_holidays_and_local_time():
    instance = parse_instance({
        "now": "2025-12-24T20:00:00+01:00",
        "timezone": "Europe/Berlin",
        "shifts": [{"weekday": day, "start": "22:00", "end": "02:00"} for day in range(7)],
        "holidays": ["2025-12-24"],
        "printers": [{"id": "a"}],
        "jobs": [{"id": "one", "durations_s": {"a": 600}}],
    })
    result = planned(instance, time_limit_s=1)
    # The 24th is a holiday: the shift that opens on the 25th at 22:00 Berlin time is the first.
    assert rows(result)["one"][1] == at("2025-12-25T21:00:00Z")


def test_changeovers_between_families_and_from_the_loaded_family():
    instance = parse_instance({
        "now": MONDAY_8,
        "changeover_s": 1800,
        "printers": [{"id": "a", "family": "PLA"}],
        "jobs": [{"id": "pla-1", "durations_s": {"a": HOUR}, "family": "PLA"},
                 {"id": "petg", "durations_s": {"a": HOUR}, "family": "PETG"},
                 {"id": "pla-2", "durations_s": {"a": HOUR}, "family": "PLA"}],
    })
    result = planned(instance, time_limit_s=2)
    # The best plan runs both PLA jobs first (the printer holds PLA) and changes over once.
    assert result["makespan_s"] == 3 * HOUR + 1800
    order = sorted(rows(result).items(), key=lambda item: item[1][1])
    assert [job for job, _ in order][-1] == "petg"
    # A printer holding another family changes over before its first job.
    other = parse_instance({**instance.to_dict(), "printers": [{"id": "a", "family": "TPU"}]})
    assert planned(other, time_limit_s=2)["makespan_s"] == 3 * HOUR + 2 * 1800


def test_due_dates_and_weights_come_before_the_makespan():
    instance = parse_instance({
        "now": MONDAY_8,
        "changeover_s": 0,
        "printers": [{"id": "fast"}, {"id": "slow"}],
        "jobs": [{"id": "urgent", "durations_s": {"fast": HOUR, "slow": 3 * HOUR}, "due": "2025-03-03T09:00:00Z",
                  "weight": 5},
                 {"id": "big", "durations_s": {"fast": 2 * HOUR, "slow": 2 * HOUR}}],
    })
    result = planned(instance, time_limit_s=1)
    assert result["late_jobs"] == 0 and result["weighted_lateness_s"] == 0
    assert rows(result)["urgent"][0] == "fast"
    assert result["makespan_s"] == 2 * HOUR


def test_printer_availability_and_the_lower_bound():
    instance = parse_instance({
        "now": MONDAY_8,
        "printers": [{"id": "a"}, {"id": "b", "available_at": "2025-03-03T09:00:00Z"}],
        "jobs": [{"id": f"j{i}", "durations_s": {"a": HOUR, "b": HOUR}} for i in range(4)],
    })
    result = planned(instance, time_limit_s=1)
    assert all(start >= at("2025-03-03T09:00:00Z") for printer, start, _ in rows(result).values() if printer == "b")
    # a runs 08-11 and b 09-10, or each two: 3 h in whole jobs. The LP splits every job, 4/9 of each on
    # b, which counts 4/9 of its hour's delay: C = 4 h - 16/9 h = 16/9 h + 4/9 h = 20/9 h.
    assert result["makespan_s"] == 3 * HOUR
    assert lp_bound(Problem(instance)) == pytest.approx(20 / 9 * HOUR, abs=1)
    # Without shifts or due dates the assignment model proves the optimum on a farm this small.
    assert result["lower_bound_makespan_s"] == 3 * HOUR


def test_greedy_is_the_plan_when_no_time_is_left_for_cp_sat():
    instance = parse_instance({
        "now": MONDAY_8, "printers": [{"id": "a"}],
        "jobs": [{"id": "j", "durations_s": {"a": 90.5}, "due": "2025-03-03T08:01:00Z"}],
    })
    result = planned(instance, time_limit_s=0.001)
    assert result["solver"] == "greedy"
    # A fraction of a second counts as a whole one; 31 s late at weight 1 (the default).
    assert rows(result)["j"][2] == at("2025-03-03T08:01:31Z")
    assert (result["late_jobs"], result["weighted_lateness_s"]) == (1, 31)


def test_no_jobs_gives_an_empty_plan():
    result = planned(parse_instance({"now": MONDAY_8, "printers": [{"id": "a"}], "jobs": []}))
    assert result["assignments"] == [] and result["makespan_s"] == 0


# --- the checker --------------------------------------------------------------------------------------


def test_the_checker_finds_what_is_wrong():
    instance = parse_instance({
        "now": MONDAY_8, "changeover_s": 600,
        "shifts": [{"weekday": 0, "start": "08:00", "end": "18:00"}],
        "printers": [{"id": "a"}, {"id": "b"}],
        "jobs": [{"id": "x", "durations_s": {"a": HOUR}, "family": "PLA"},
                 {"id": "y", "durations_s": {"a": HOUR, "b": HOUR}, "family": "PETG"}],
    })
    good = planned(instance, time_limit_s=1)

    def broken(**changes):
        result = json.loads(json.dumps(good))
        for item in result["assignments"]:
            item.update(changes.get(item["job"], {}))
        return result

    def problems(result):
        return " | ".join(check_plan(instance, result))

    assert "cannot run on" in problems(broken(x={"printer": "b"}))
    assert "needs 3600" in problems(broken(x={"end": "2025-03-03T08:30:00Z"}))
    assert "outside every shift" in problems(broken(x={"start": "2025-03-03T19:00:00Z",
                                                       "end": "2025-03-03T20:00:00Z"}))
    both_on_a = broken(x={"start": "2025-03-03T08:00:00Z", "end": "2025-03-03T09:00:00Z"},
                       y={"printer": "a", "start": "2025-03-03T09:05:00Z", "end": "2025-03-03T10:05:00Z"})
    assert "a changeover needs" in problems(both_on_a)
    overlap = broken(x={"start": "2025-03-03T08:00:00Z", "end": "2025-03-03T09:00:00Z"},
                     y={"printer": "a", "start": "2025-03-03T08:30:00Z", "end": "2025-03-03T09:30:00Z"})
    assert "needs 2025-03-03T09:10:00+00:00 or later" in problems(overlap)
    missing = json.loads(json.dumps(good))
    missing["assignments"] = [a for a in missing["assignments"] if a["job"] != "y"]
    assert "y: not planned" in problems(missing)
    twice = json.loads(json.dumps(good))
    twice["assignments"].append(dict(twice["assignments"][0]))
    assert "planned more than once" in problems(twice)
    wrong_numbers = {**good, "makespan_s": good["makespan_s"] - 1}
    assert "makespan_s" in problems(wrong_numbers)


# --- the exchange format -------------------------------------------------------------------------------


def test_the_exchange_format_round_trips():
    data = {
        "now": "2025-03-03T08:00:00+01:00", "timezone": "Europe/Berlin", "changeover_s": 900,
        "shifts": [{"weekday": 0, "start": "07:00", "end": "19:00"}, {"weekday": 4, "start": "22:00", "end": "24:00"}],
        "holidays": ["2025-04-18"],
        "printers": [{"id": "a", "available_at": "2025-03-03T09:30:00+01:00", "family": "PLA"},
                     {"id": "b", "available_at": "2025-03-03T08:00:00+01:00"}],
        "jobs": [{"id": "j1", "durations_s": {"a": 5400, "b": 6000.5}, "family": "PLA",
                  "due": "2025-03-04T12:00:00+01:00", "weight": 2},
                 {"id": "j2", "durations_s": {"b": 60}, "family": "", "due": None, "weight": 1}],
    }
    instance = parse_instance(data)
    assert instance.to_dict() == data
    assert parse_instance(json.loads(json.dumps(instance.to_dict()))) == instance
    result = plan(instance, time_limit_s=1)
    text = json.dumps(result.to_dict())
    assert parse_plan(json.loads(text)).to_dict() == result.to_dict()
    assert set(json.loads(text)) == {"assignments", "makespan_s", "weighted_lateness_s", "late_jobs",
                                     "lower_bound_makespan_s", "solver", "seconds"}


def test_defaults_of_the_optional_fields():
    instance = load_instance('{"now": "2025-03-03T08:00:00Z", "printers": [{"id": "a"}],'
                             ' "jobs": [{"id": "j", "durations_s": {"a": 60}}]}')
    assert instance.changeover_s == 0 and instance.shifts == [] and instance.holidays == []
    assert instance.printers[0].available_at == at(MONDAY_8) and instance.printers[0].family is None
    job = instance.jobs[0]
    assert (job.family, job.due, job.weight) == ("", None, 1)


VALID = {"now": MONDAY_8, "printers": [{"id": "a"}], "jobs": [{"id": "j", "durations_s": {"a": 60}}]}


def with_job(**job):
    return {**VALID, "jobs": [{"id": "j", "durations_s": {"a": 60}, **job}]}


@pytest.mark.parametrize(("data", "message"), [
    ([], "must be an object"),
    ({"printers": [{"id": "a"}], "jobs": []}, "the field now is missing"),
    ({**VALID, "now": "2025-03-03T08:00:00"}, "now: \"2025-03-03T08:00:00\" has no UTC offset"),
    ({**VALID, "now": "yesterday"}, "now: \"yesterday\" is not an ISO 8601 date and time"),
    ({**VALID, "timezone": "Mars/Olympus"}, "timezone: \"Mars/Olympus\" is not a known IANA time zone"),
    ({**VALID, "changeover_s": -1}, "changeover_s: must be at least 0"),
    ({**VALID, "changeover_s": "600"}, "changeover_s: must be a number"),
    ({**VALID, "printers": []}, "printers: must be a non-empty list"),
    ({**VALID, "printers": [{"id": "a"}, {"id": "a"}]}, "printers[1].id: the printer id \"a\" appears twice"),
    ({**VALID, "printers": [{"id": ""}]}, "printers[0].id: must be a non-empty string"),
    ({**VALID, "printers": [{"id": "a", "available_at": "2031-01-01T00:00:00Z"}]}, "more than three years away"),
    ({**VALID, "printers": [{"id": "a", "speed": 2}]}, "printers[0].speed: unknown field"),
    (with_job(durations_s={"zz": 60}), "jobs[0].durations_s.zz: there is no printer \"zz\" in printers"),
    (with_job(durations_s={"a": -60}), "jobs[0].durations_s.a: must be more than 0"),
    (with_job(durations_s={"a": 0}), "jobs[0].durations_s.a: must be more than 0"),
    (with_job(durations_s={"a": 1e12}), "jobs[0].durations_s.a: must be more than 0 and at most 2592000"),
    (with_job(durations_s={"a": True}), "jobs[0].durations_s.a: must be a number"),
    (with_job(durations_s={}), "jobs[0].durations_s: names no printer"),
    (with_job(durations_s=[60]), "jobs[0].durations_s: must be an object"),
    (with_job(weight=-1), "jobs[0].weight: must be at least 0"),
    (with_job(weight=10**30), "jobs[0].weight: must be at least 0 and at most 1000000"),
    (with_job(due="2025-13-01T00:00:00Z"), "jobs[0].due: \"2025-13-01T00:00:00Z\" is not an ISO 8601"),
    (with_job(family=3), "jobs[0].family: must be a string"),
    ({**VALID, "jobs": [{"id": "j", "durations_s": {"a": 60}}, {"id": "j", "durations_s": {"a": 60}}]},
     "jobs[1].id: the job id \"j\" appears twice"),
    ({**VALID, "jobs": [{"durations_s": {"a": 60}}]}, "jobs[0]: the field id is missing"),
    ({**VALID, "shifts": [{"weekday": 7, "start": "08:00", "end": "12:00"}]}, "shifts[0].weekday: must be a whole"),
    ({**VALID, "shifts": [{"weekday": 0, "start": "8:00", "end": "12:00"}]}, "shifts[0].start: must be a time"),
    ({**VALID, "shifts": [{"weekday": 0, "start": "24:00", "end": "12:00"}]}, "shifts[0].start: must be a time"),
    ({**VALID, "shifts": [{"weekday": 0, "start": "08:00", "end": "12:60"}]}, "shifts[0].end: must be a time"),
    ({**VALID, "shifts": [{"weekday": 0, "start": "08:00", "end": "08:00"}]}, "shifts[0]: a shift that starts"),
    ({**VALID, "shifts": {"weekday": 0}}, "shifts: must be a list"),
    ({**VALID, "holidays": ["25.12.2025"]}, "holidays[0]: must be a date"),
])
def test_bad_instances_are_refused_with_where_and_why(data, message):
    with pytest.raises(InstanceError) as caught:
        parse_instance(data)
    assert message in caught.value.message
    assert caught.value.status == 422


def test_every_problem_is_reported_at_once():
    data = {**VALID, "jobs": [{"id": "j", "durations_s": {"zz": 60}}, {"id": "k", "durations_s": {"a": -1}}]}
    with pytest.raises(InstanceError) as caught:
        parse_instance(data)
    assert len(caught.value.errors) == 2


@pytest.mark.parametrize(("text", "message"), [
    ('{"now": NaN}', "NaN is not a number JSON allows"),
    ('{"now": Infinity}', "Infinity is not a number JSON allows"),
    ('{"now": "x", "now": "y"}', "the key \"now\" appears twice"),
    ('{"now": ', "Not valid JSON"),
    (b"\xff\xfe", "Not valid JSON"),
])
def test_json_that_the_format_does_not_take(text, message):
    with pytest.raises(InstanceError) as caught:
        load_instance(text)
    assert message in caught.value.message


def test_a_huge_number_in_json_is_refused():
    text = json.dumps(with_job()).replace('"a": 60', '"a": 1e999')
    with pytest.raises(InstanceError, match="must be a finite number"):
        load_instance(text)


# --- the command --------------------------------------------------------------------------------------


def test_the_command_prints_the_plan_as_json(tmp_path, capsys):
    path = tmp_path / "instance.json"
    path.write_text(json.dumps({
        "now": MONDAY_8, "changeover_s": 600, "printers": [{"id": "a"}, {"id": "b"}],
        "jobs": [{"id": f"j{i}", "durations_s": {"a": 600 * (i + 1), "b": 700}, "family": "AB"[i % 2]}
                 for i in range(5)],
    }))
    call_command("plan_schedule", "--instance", str(path), "--time-limit", "1")
    result = json.loads(capsys.readouterr().out)
    assert check_plan(load_instance(path.read_text()), result) == []
    assert result["solver"] in ("cp-sat", "local-search", "greedy")


def run_command(capsys, *args) -> tuple[int, str, str]:
    try:
        Command().run_from_argv(["manage.py", "plan_schedule", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_refuses_a_bad_instance_with_a_clear_message(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(with_job(durations_s={"nope": 60})))
    code, out, err = run_command(capsys, "--instance", str(path))
    assert code == 1 and out == ""
    assert "The instance cannot be planned:" in err
    assert "jobs[0].durations_s.nope: there is no printer \"nope\" in printers" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--instance", "/nonexistent/instance.json"], "Cannot read /nonexistent/instance.json"),
    (["--instance", "-", "--time-limit", "0"], "--time-limit must be a number of seconds above 0"),
    (["--instance", "-", "--time-limit", "nan"], "--time-limit must be a number of seconds above 0"),
])
def test_the_command_refuses_bad_arguments(capsys, args, message):
    code, out, err = run_command(capsys, *args)
    assert code == 1 and out == ""
    assert message in err
