"""Locust users for each simulated API, and the locustfile that runs a scenario.

- imagegen.py   the locustfile: `locust -f locustfiles/imagegen.py --scenario flash_sale`
- users.py      FastHttpUser classes, one per API (relay, OpenAI images, Vertex, Midjourney jobs)
- apis.py       how each API is called: request, errors, retries, job polling
- prompts.py    fashion-catalog prompts for the seed's three uses
"""
