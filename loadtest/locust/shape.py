"""The scenario's stages as a Locust LoadTestShape (runs on the master, or the only process)."""

from __future__ import annotations

from locust import LoadTestShape

# Open model: VUs are all started first (like k6's pre-allocated VUs); the arrival clock
# starts once they are up, and a short drain lets the last scheduled requests finish.
OPEN_SPAWN_S = 2.0
DRAIN_S = 3.0


def default_spawn_rate(delta_users: int, stage_s: float) -> float:
    # Reach the stage's users within a tenth of it: Locust's shape blocks while spawning,
    # so a ramp longer than its stage would swallow the next stage.
    return max(1.0, abs(delta_users) / max(0.5, 0.1 * stage_s))


class ScenarioShape(LoadTestShape):
    """Closed model: users per stage, ramped at its spawn rate. Open model: all VUs, then the schedule."""

    def tick(self):  # type: ignore[override]
        run = getattr(self.runner.environment, "imagegen", None) if self.runner else None
        if run is None:
            return None
        load = run.scenario.load
        t = self.get_run_time()
        if load.model == "open":
            if t >= OPEN_SPAWN_S + load.duration_s + DRAIN_S:
                return None
            return load.max_vus, max(100.0, load.max_vus / (OPEN_SPAWN_S / 2))
        elapsed, prev_users, prev_rate = 0.0, 0, 1.0
        for stage in load.stages:
            if stage.spawn_rate:
                rate = stage.spawn_rate
            elif stage.users == prev_users:
                # Same users as before: repeat the previous tick exactly, so Locust does not
                # restart a ramp that is still going at a slower rate.
                rate = prev_rate
            else:
                rate = default_spawn_rate(stage.users - prev_users, stage.duration_s)
            if t < elapsed + stage.duration_s:
                return stage.users, rate
            elapsed += stage.duration_s
            prev_users, prev_rate = stage.users, rate
        return None
