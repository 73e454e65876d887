# bench/peers/python/ws_echo.py - a WebSocket echo server on Python's
# `websockets` package (Debian python3-websockets; asyncio, one thread):
# every message is sent back (bench/run_ws.sh --peers python).
#
#   /usr/bin/python3 ws_echo.py PORT
#
# Prints "port <n>" when listening; runs until killed.
import asyncio
import sys

import websockets


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, compression=None,
                                max_size=None, ping_interval=None):
        print("port %d" % port, flush=True)
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1])))
