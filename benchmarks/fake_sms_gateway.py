"""A fast fake of Africa's Talking's SMS API for benchmarks: asyncio, keep-alive.

POST /version1/messaging (form: username, to, message, from, clientReference)
answers like the real gateway; GET /stats answers {"received", "unique", "repeats"},
counting receipts by clientReference (the outbox dedupe key). Run it as
`python benchmarks/fake_sms_gateway.py PORT`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter
from urllib.parse import parse_qs

received: Counter[str] = Counter()
total = 0


def _reply(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    return head.encode() + body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global total
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            if method == "GET" and path.startswith("/stats"):
                stats = {"received": total, "unique": len(received), "repeats": total - len(received)}
                writer.write(_reply("200 OK", json.dumps(stats).encode()))
            elif method == "POST" and path.startswith("/version1/messaging"):
                form = parse_qs(body.decode())
                reference = (form.get("clientReference") or [""])[0]
                number = (form.get("to") or [""])[0]
                total += 1
                received[reference] += 1
                answer = {
                    "SMSMessageData": {
                        "Message": "Sent to 1/1 Total Cost: TND 0.0200",
                        "Recipients": [
                            {"statusCode": 101, "number": number, "status": "Success", "cost": "TND 0.0200",
                             "messageId": f"ATXid_{uuid.uuid4().hex}"}
                        ],
                    }
                }  # fmt: skip
                writer.write(_reply("201 Created", json.dumps(answer).encode()))
            else:
                writer.write(_reply("404 Not Found", b"{}"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"fake gateway on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
