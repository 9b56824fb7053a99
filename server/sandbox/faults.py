"""Injected faults: make the next N requests to an endpoint slow, fail, or lose their response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["latency", "status", "drop"]
FAULT_KINDS: tuple[str, ...] = ("latency", "status", "drop")


@dataclass
class Fault:
    endpoint: str
    kind: FaultKind
    latency_ms: int = 0
    status: int = 503
    times: int = 1


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, endpoint: str) -> Fault | None:
        """The first pending fault for `endpoint`, spending one of its uses."""
        for fault in self._faults:
            if fault.endpoint == endpoint and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        return list(self._faults)
