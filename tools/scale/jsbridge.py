"""The bridge's ingest on a JetStream stream, as a process of its own: ``python -m tools.scale.jsbridge
--database-url URL [--workers N] NATS_URL...``. Prints ``consuming`` once its pull workers are subscribed;
stops on SIGTERM or SIGINT (the batch in hand is stored and acknowledged first)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from cloud_bridge.jetstream import JetStreamConsumer
from cloud_bridge.services import Services
from cloud_bridge.store import Store


async def serve(url: str, servers: list[str], workers: int) -> None:
    store = Store(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        consumer = JetStreamConsumer(servers, Services.build(store).dispatcher.handle_batch, workers=workers)
        task = asyncio.create_task(consumer.run(stop))
        await consumer.ready.wait()
        print("consuming", flush=True)
        await task
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("servers", nargs="+", help="NATS URLs of the cluster's nodes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(args.database_url, args.servers, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
