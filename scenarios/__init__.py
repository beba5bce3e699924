"""The built-in scenarios: one TOML file per workload (`loadtest scenarios` lists them).

A package only so that an installed suite carries them as data; nothing here is imported
but the files themselves, found with `importlib.resources`.
"""
