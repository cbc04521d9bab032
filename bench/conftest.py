"""bench/ is the benchmark harness, never a test suite: pytest collects nothing here."""

collect_ignore_glob = ["*"]
