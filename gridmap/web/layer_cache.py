"""Layer answers kept in the worker by their ETag, within a byte budget.

An ETag names everything a layer's answer depends on (services.layers.layer_etag: the data
version, the request's parameters, the user's area and role, the clock's bucket), and it is known
before the layer is read. So an answer kept under its ETag is the answer: the next user who asks
for the same layer of the same data (a shift change: hundreds open the city map within a minute)
gets it without the query (~200 ms of PostgreSQL for the city's 10,000 grids) and without the
compression. Nothing here is state the app depends on: any worker computes the same answer, a
write moves the version and so every ETag, and an answer not asked for again ages out (least
recently used first) when the budget (``map_layer_cache_mb``) is full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class LayerCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()  # gunicorn threads, the dev server's threads

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            self._entries[key] = body
            self.bytes += len(body)
            while self.bytes > self.max_bytes:
                _key, evicted = self._entries.popitem(last=False)
                self.bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)
