#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TCP proxy that adds latency: the bench's far link (bench/bench.sh).

    delayproxy.py DELAY_MS UPSTREAM_HOST UPSTREAM_PORT READY_FILE

Listens on a free port of 127.0.0.1 (written to READY_FILE once
listening) and forwards each connection to UPSTREAM, holding every chunk
DELAY_MS milliseconds in each direction before passing it on: a round
trip gains 2 x DELAY_MS.  Chunks are pipelined (a queue per direction,
each chunk released at its own arrival time + DELAY_MS), so the delay
costs latency, not throughput, as on a real long link.  The bytes are
opaque (TLS passes through untouched); a half-close is passed on after
the delay too.  The kernel's tc tbf (on the veth the upstream sits
behind) sets the rate; this kernel has no netem.
"""
import asyncio
import os
import sys
import time


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def take():
        while True:
            try:
                data = await reader.read(1 << 16)
            except (ConnectionError, OSError):
                data = b""
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def give():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(take(), give())


async def serve(delay, host, port, ready):
    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, uw, delay), pump(ur, cw, delay))
        for w in (cw, uw):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    os.rename(ready + ".tmp", ready)
    async with server:
        await server.serve_forever()


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    delay = int(sys.argv[1]) / 1000.0
    asyncio.run(serve(delay, sys.argv[2], int(sys.argv[3]), sys.argv[4]))


if __name__ == "__main__":
    main()
