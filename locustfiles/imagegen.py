"""The suite's locustfile: runs a scenario against the simulated providers or any base URL.

    loadtest run flash_sale                              # what a person or a CI job runs
    locust -f locustfiles/imagegen.py --headless --scenario flash_sale --mock-url http://127.0.0.1:8000
    locust -f locustfiles/imagegen.py --scenario flash_sale --host https://relay.example.com/v1

`loadtest run` and `loadtest ui` start the mock and pass these options for you. The load
comes from the scenario's load model (the shape below); the verdict is Locust's exit code:
0 SLA held, 1 SLA breached, 2 the run proves nothing. Copy this file to write your own:
`install()` and the shape give any locustfile the scenario's load, the exact recorder, the
gate and the reports.
"""

from loadtest.locust import plugin
from loadtest.locust.shape import ScenarioShape
from loadtest.locust.users import ImageGenUser

plugin.install()


class ScenarioUser(ImageGenUser):
    """Speaks whichever API the scenario's target speaks (set from the scenario at start)."""


__all__ = ["ScenarioShape", "ScenarioUser"]
