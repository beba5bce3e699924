"""The load-test suite: scenario file -> Locust run -> recorder -> gate -> report.

- scenario.py      a workload, as declared in scenarios/*.toml
- thresholds.py    k6-style threshold expressions
- recorder.py      exact latency histograms (HDR), mergeable across Locust workers
- gate.py          thresholds -> verdict and exit code
- report/          summary.json, junit.xml, summary.md, console table, HTML with plots
- locust/          the Locust side: load shape, open-model executor, the SLA plugin
- runner.py        `make loadtest`: the embedded mock, Locust (optionally distributed), the verdict
"""
