"""Simulated image-generation providers: profile -> behaviours -> wire format.

- profile.py, profiles/   a provider's figures, as data
- behaviours/             latency, capacity, rate limit, faults, failover
- wire/                   one module per provider API
- app.py                  the aiohttp server; admin.py, metrics.py, images.py
"""
