"""The scenario's load model as a Locust LoadTestShape (runs on the master, or the only process)."""

from __future__ import annotations

from locust import LoadTestShape


class ScenarioShape(LoadTestShape):
    """Asks the scenario's load model what Locust should run now; its end is the run's planned end."""

    def tick(self) -> tuple[int, float] | None:
        suite = getattr(self.runner.environment, "loadtest", None) if self.runner else None
        if suite is None:
            return None
        step = suite.scenario.load.tick(self.get_run_time())
        if step is None:
            suite.shape_ended()
        return step
