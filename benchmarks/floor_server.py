"""The floor for benchmarks/chat_fanout.py: a bare ``websockets`` broadcast server, no Django.

Usage: python benchmarks/floor_server.py PORT  (prints "Listening on PORT" when ready)
"""

import asyncio
import json
import sys

import websockets

clients = set()


async def handler(connection):
    clients.add(connection)
    try:
        async for text in connection:
            message = json.loads(text)
            frame = json.dumps({"type": "chat.message", "text": message.get("text", "")})
            websockets.broadcast(clients, frame)
    finally:
        clients.discard(connection)


async def main(port):
    async with websockets.serve(handler, "127.0.0.1", port, max_queue=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"Listening on {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
