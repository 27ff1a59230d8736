"""A TCP proxy that adds a round-trip time, for benchmarks against a "remote" server.

    python bench/latency_proxy.py LISTEN_PORT UPSTREAM_PORT RTT_MS

Every byte is held for half the RTT in each direction, and a new connection's first bytes wait
one more RTT (the TCP handshake a real client pays before it can send). Order within a
connection is kept; bandwidth is not limited. It prints ``ready`` once it listens.

Hand-written (about 50 lines) because what the benchmarks need is a delay on the loopback and
nothing else: the ``tc netem`` qdisc needs root and a network namespace here, and the proxies
on PyPI (toxiproxy's clients, mitmproxy) bring a server or far more than this.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float, first_s: float
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    extra = first_s
    try:
        while data := await reader.read(65536):
            await queue.put((time.monotonic() + delay_s + extra, data))
            extra = 0.0
    except (ConnectionError, OSError):
        pass
    await queue.put((time.monotonic() + delay_s, b""))
    with contextlib.suppress(ConnectionError, OSError):
        await sender


async def _serve(listen: int, upstream: int, rtt_s: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pump(client_r, server_w, rtt_s / 2, rtt_s),
            _pump(server_r, client_w, rtt_s / 2, 0.0),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen_port, upstream_port, rtt_ms = sys.argv[1:4]
    asyncio.run(_serve(int(listen_port), int(upstream_port), float(rtt_ms) / 1000))
