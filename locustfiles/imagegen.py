"""The suite's locustfile: runs a scenario from scenarios/ against the mock or any base URL.

    locust -f locustfiles/imagegen.py --headless --scenario flash_sale --mock-url http://127.0.0.1:8000
    locust -f locustfiles/imagegen.py --scenario flash_sale --host https://relay.example.com/v1

`make loadtest` and `make ui` start the mock and pass these options for you. The
load comes from the scenario's stages (the shape below); the verdict is Locust's
exit code: 0 SLA held, 1 SLA breached, 2 the run proves nothing.
"""

from loadtest.locust import plugin
from loadtest.locust.shape import ScenarioShape
from locustfiles.users import ImageGenUser

plugin.install()


class ScenarioUser(ImageGenUser):
    """Speaks whichever API the scenario's target speaks (set from the scenario at start)."""


__all__ = ["ScenarioShape", "ScenarioUser"]
