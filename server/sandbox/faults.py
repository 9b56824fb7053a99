"""Injected faults: make the next N requests to an endpoint slow, fail, or lose their response.

For the X Activity API's stream (a response that never ends) two more: `cut` closes the connection
after `after_events` events, without the end of the chunked body, as a network cut or an X restart
does; `stall` sends `after_events` events and then nothing at all, not even the keep-alive newline,
while the connection stays open (the failure X's streaming docs tell clients to detect with a read
timeout: x-api/fundamentals/handling-disconnections.mdx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["latency", "status", "drop", "cut", "stall"]
FAULT_KINDS: tuple[str, ...] = ("latency", "status", "drop", "cut", "stall")


@dataclass
class Fault:
    endpoint: str
    kind: FaultKind
    latency_ms: int = 0
    status: int = 503
    times: int = 1
    after_events: int = 0  # cut, stall: events sent on the stream first


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
