"""`python -m mock_server` is `mock-server`."""

from mock_server.cli import main

raise SystemExit(main())
