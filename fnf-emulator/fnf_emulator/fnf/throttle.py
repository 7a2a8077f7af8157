"""Token buckets per API action with the published default quotas (per account)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fnf_emulator import limits

QUOTAS: dict[str, tuple[int, int]] = {
    "StartExecution": limits.FNF_QUOTA_START_EXECUTION,
    "DescribeExecution": limits.FNF_QUOTA_DESCRIBE_EXECUTION,
    "GetExecutionHistory": limits.FNF_QUOTA_GET_EXECUTION_HISTORY,
}


class TokenBucket:
    def __init__(self, burst: float, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = float(burst)
        self.rate = float(rate)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class ActionThrottle:
    """One bucket per action; every action not in :data:`QUOTAS` gets ``FNF_QUOTA_DEFAULT``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def allow(self, action: str) -> bool:
        with self._lock:
            bucket = self._buckets.get(action)
            if bucket is None:
                burst, rate = QUOTAS.get(action, limits.FNF_QUOTA_DEFAULT)
                bucket = self._buckets[action] = TokenBucket(burst, rate, self._clock)
            return bucket.take()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
