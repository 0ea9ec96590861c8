"""The farm planner: which printer runs each queued job, and when.

Independent of the database: it takes an `Instance` (the exchange format, `exchange`) and gives a
`Plan`. `plan()` builds a greedy schedule (`greedy`), improves it by local search (`search`, or
`balance` on the assignment alone where no shifts bind) and OR-Tools CP-SAT (`cpsat`) within a
time limit and keeps the best (weighted lateness first, then makespan);
`bounds` gives the makespan's lower bound, `check` verifies a plan on its own.

    instance = load_instance(path.read_text())
    result = plan(instance, time_limit_s=10)
    json.dumps(result.to_dict())
"""

from production.planning.check import check_plan
from production.planning.exchange import (
    Assignment,
    Instance,
    InstanceError,
    Job,
    Plan,
    Printer,
    Shift,
    load_instance,
    loads_json,
    parse_instance,
    parse_plan,
)
from production.planning.planner import DEFAULT_TIME_LIMIT_S, plan, plan_greedy

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "Assignment",
    "Instance",
    "InstanceError",
    "Job",
    "Plan",
    "Printer",
    "Shift",
    "check_plan",
    "load_instance",
    "loads_json",
    "parse_instance",
    "parse_plan",
    "plan",
    "plan_greedy",
]
