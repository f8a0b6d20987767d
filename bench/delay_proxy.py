#!/usr/bin/env python3
"""A TCP proxy on loopback that adds latency, to model a distant store.

    delay_proxy.py LISTEN_PORT UPSTREAM_PORT RTT_MS

Every chunk is forwarded RTT_MS/2 after it arrived, in each direction, in order, so a
request-response exchange takes RTT_MS longer. Bandwidth is not limited. It listens on
127.0.0.1 only and stops on SIGTERM or SIGINT.
"""

import asyncio
import signal
import sys


async def pump(reader, writer, delay):
    queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def sender():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def handle(client_r, client_w, upstream_port, delay):
    try:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pump(client_r, up_w, delay), pump(up_r, client_w, delay))
    for w in (client_w, up_w):
        try:
            w.close()
        except OSError:
            pass


async def main():
    listen_port, upstream_port, rtt_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    delay = rtt_ms / 2000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, upstream_port, delay), "127.0.0.1", listen_port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
