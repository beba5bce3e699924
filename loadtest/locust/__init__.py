"""The Locust side of the suite: load shape, open-model executor, and the SLA plugin."""
