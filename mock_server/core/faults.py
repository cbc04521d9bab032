"""Fault rules loaded from scenario documents, with their counters."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from mock_server.core.scenarios import Scenario


@dataclass(slots=True)
class FaultRule:
    name: str
    scenario: str
    spec: dict[str, Any]
    matched: int = 0
    fired: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def provider(self) -> str | None:
        return (self.spec.get("match") or {}).get("provider")

    @property
    def remaining(self) -> int | None:
        times = self.spec.get("times")
        return None if times is None else max(times - self.fired, 0)

    def outcome_text(self) -> str:
        parts: list[str] = []
        respond = self.spec.get("respond")
        if respond:
            what = respond.get("error") or ("literal body" if "body" in respond else "")
            parts.append(f"respond {respond.get('status')} {what}".strip())
        if self.spec.get("fault"):
            parts.append(f"fault {self.spec['fault']}")
        if self.spec.get("delay"):
            parts.append(f"delay {self.spec['delay']}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "matched": self.matched,
                "remaining": self.remaining, "outcome": self.outcome_text()}


def rules_from(scenario: Scenario) -> list[FaultRule]:
    return [FaultRule(str(spec["name"]), scenario.name, dict(spec))
            for spec in scenario.document.get("faults") or []]
