"""A local echo server on localhost:4040 for the examples (the `websockets` package).

`python examples/echo_server.py --close-after N` closes each connection after N echoes.
"""
import argparse
import asyncio

from websockets.asyncio.server import ServerConnection, serve


async def main(host: str, port: int, close_after: int) -> None:
    async def echo(ws: ServerConnection) -> None:
        n = 0
        async for message in ws:
            await ws.send(message)
            n += 1
            if close_after and n >= close_after:
                await ws.close(1000, "bye")

    async with serve(echo, host, port, max_size=None):
        await asyncio.Future()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=4040)
    p.add_argument("--close-after", type=int, default=0)
    a = p.parse_args()
    asyncio.run(main(a.host, a.port, a.close_after))
