"""The suite's locustfile (imagegen.py), shipped with the package so `loadtest run` finds it anywhere.

Copy it to start your own: the users, clients and plugin it uses live in `loadtest`.
"""
