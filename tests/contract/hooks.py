"""Schemathesis hooks for the live CLI run (.ci/conformance-live loads them via SCHEMATHESIS_HOOKS).

The in-process suite predicts every answer exactly because each of its requests gets a fresh
session; the live run shares one session per spec, so it adds only what holds whatever happened
before: the default world's payments and orders never go missing. Without this, a server started
without its seed would pass, since 404 is a documented answer for an unknown id.
"""

from __future__ import annotations

from typing import Any

import schemathesis

# The default world's ids that belong to the credentials in <spec>.toml (README, "The default
# world"); 100101785300 and ORD-2001 belong to other merchants and rightly answer 404.
SEEDED = {
    "orderId": {"100101785223", "100101785224", "100101785225", "100101785226", "100101785227",
                "100101785228", "100101785229", "100101785230"},
    "orderReference": {"ORD-1001", "ORD-1002", "ORD-1003", "ORD-1004", "ORD-1005", "ORD-1006",
                       "ORD-1007"},
}


@schemathesis.check
def seeded_ids_are_found(ctx: Any, response: Any, case: Any) -> bool | None:
    # a method the path does not have is another matter (Optty's NestJS answers it 404)
    if response.status_code != 404 or case.method.upper() != case.operation.method.upper():
        return None
    for name, seeded in SEEDED.items():
        value = (case.path_parameters or {}).get(name)
        assert value not in seeded, f"{name} {value} is in the seeded world, yet answered 404"
    return None
