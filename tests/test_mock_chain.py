"""The behaviour chain runs `Admission` steps (outage, rate limit, failover) in line: each answers or
lets a call pass at once, as its awaited `handle` did, with every `prepare` still run first, in
chain order, and a subclass that overrides `handle` (the workers' shared rate limit) awaited as
before. Driven through the real behaviours in process."""

from __future__ import annotations

import asyncio
import random

from mockprovider.behaviours import Admission, Behaviour, Call, Chain, Kind, Outage, Outcome, RateLimit
from mockprovider.behaviours.base import Proceed
from mockprovider.settings import Settings


class Recorder(Behaviour):
    """Notes each prepare and handle it sees; its prepare returns `steps` (None: it steps in)."""

    name = "recorder"

    def __init__(self, log: list[str], tag: str, steps: bool | None = None) -> None:
        self.log, self.tag, self.steps = log, tag, steps

    def prepare(self, call: Call) -> bool | None:
        self.log.append(f"prepare {self.tag}")
        return self.steps

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        self.log.append(f"handle {self.tag}")
        await asyncio.sleep(0)   # a step that waits, as capacity and latency do
        return await proceed()


class CountingRateLimit(RateLimit):
    """A rate limit whose `handle` is its own (as SharedRateLimit's is): the chain must await it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.handled = 0

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        self.handled += 1
        return Outcome(Kind.RATE_LIMITED, retry_after_s=1.0)


def _serve(chain: Chain, key: str = "hs_chain_key") -> tuple[Call, Outcome]:
    async def go() -> tuple[Call, Outcome]:
        call = Call("relay", key)
        return call, await chain.run(call)
    return asyncio.run(go())


def test_a_refusal_in_line_skips_every_later_handle_but_not_any_prepare() -> None:
    log: list[str] = []
    settings = Settings(requests_per_minute=1 / 60, burst=1)   # one token, refilled after an hour
    limiter = RateLimit(settings)
    chain = Chain([Recorder(log, "first", steps=False), limiter, Recorder(log, "after")])
    first, outcome = _serve(chain)
    assert outcome.kind is Kind.OK and first.outcome is outcome
    assert log == ["prepare first", "prepare after", "handle after"]
    assert first.rate is not None and first.rate.remaining == 0

    log.clear()
    second, outcome = _serve(chain)
    assert outcome.kind is Kind.RATE_LIMITED and second.outcome is outcome
    assert outcome.retry_after_s is not None and outcome.retry_after_s > 3500   # the hour's token
    # Every draw is still made, in order, on arrival; no later step handles a refused call.
    assert log == ["prepare first", "prepare after"]
    assert second.t_entered > 0 and second.t_done >= second.t_entered


def test_an_outage_answers_before_the_rate_limit_spends_a_token() -> None:
    settings = Settings(requests_per_minute=60, burst=5)
    settings.outage = True
    limiter = RateLimit(settings)
    chain = Chain([Outage(settings), limiter])
    for _ in range(3):
        call, outcome = _serve(chain)
        assert outcome.kind is Kind.OUTAGE and call.outcome is outcome
    assert not limiter.buckets   # the rate limit never saw a call
    settings.outage = False
    call, outcome = _serve(chain)
    assert outcome.kind is Kind.OK and call.rate is not None and call.rate.remaining == 4


def test_a_step_that_overrides_handle_is_awaited_not_run_in_line() -> None:
    settings = Settings(requests_per_minute=1_000_000, burst=1_000_000)
    limiter = CountingRateLimit(settings)
    assert isinstance(limiter, Admission)
    call, outcome = _serve(Chain([limiter]))
    assert outcome.kind is Kind.RATE_LIMITED and limiter.handled == 1
    assert not limiter.buckets   # RateLimit.admit was not run beside the override


def test_in_line_steps_then_a_waiting_one_answer_as_a_coroutine() -> None:
    log: list[str] = []
    settings = Settings(requests_per_minute=1_000_000, burst=1_000_000)
    chain = Chain([Outage(settings), RateLimit(settings), Recorder(log, "waits"), Recorder(log, "last")])
    call, outcome = _serve(chain)
    assert outcome.kind is Kind.OK and call.outcome is outcome
    assert log == ["prepare waits", "prepare last", "handle waits", "handle last"]
    assert call.t_done >= call.t_entered > 0


def test_the_same_draws_in_the_same_order_whichever_way_a_step_runs() -> None:
    """A fault draw after an in-line step: a seeded stream gives the same calls the same faults."""
    def faults_drawn() -> list[bool]:
        rng = random.Random(7)
        drawn: list[bool] = []

        class Draw(Behaviour):
            def prepare(self, call: Call) -> bool:
                drawn.append(rng.random() < 0.5)
                return False

        settings = Settings(requests_per_minute=1 / 60, burst=2)   # two pass, the rest are refused in line
        chain = Chain([RateLimit(settings), Draw()])
        for _ in range(6):
            _serve(chain)
        return drawn

    first = faults_drawn()
    assert len(first) == 6 and first == faults_drawn()
