"""IntelMQ's own Shadowserver parser over a Shadowserver CSV report, for `farol-bench intelmq`.

Runs the bot in IntelMQ's library mode: no Redis. Each event the bot sends is serialized to
JSON, as a real pipeline does before handing it to Redis, then dropped.

CHUNK 0 sends the file as one report, as IntelMQ's Shadowserver collectors deliver a report;
CHUNK N sends reports of N rows, each with the header, as its file collector does with
`chunk_size` and `chunk_replicate_header`.

Usage: python intelmq_shadowserver.py REPORT.csv CHUNK   (INTELMQ_ROOT_DIR set, with the schema
in var/lib/bots/shadowserver-schema.json). Prints a JSON line: events, errors, seconds.
"""

import base64
import json
import os
import sys
import time

from intelmq.bots.parsers.shadowserver.parser import ShadowserverParserBot
from intelmq.lib import pipeline
from intelmq.lib.bot import BotLibSettings
from intelmq.lib.message import MessageFactory

sent = {}


def send(self, message, path="_default", path_permissive=True):
    MessageFactory.serialize(message)
    sent[path] = sent.get(path, 0) + 1


pipeline.Pythonlistsimple.send = send


def main():
    path, chunk = sys.argv[1], int(sys.argv[2])
    settings = BotLibSettings | {"logging_level": "ERROR"}
    bot = ShadowserverParserBot("shadowserver-parser", settings=settings)
    started = time.perf_counter()
    with open(path, "rb") as f:
        header = f.readline()
        while True:
            lines = [line for _, line in zip(range(chunk), f)] if chunk else f.readlines()
            if not lines:
                break
            report = {
                "__type": "Report",
                "feed.name": "Shadowserver",
                "raw": base64.b64encode(header + b"".join(lines)).decode(),
                "extra.file_name": os.path.basename(path),
            }
            bot.process_message(report)
    events, errors = sent.get("_default", 0), sent.get("_on_error", 0)
    seconds = time.perf_counter() - started
    print(json.dumps({"events": events, "errors": errors, "seconds": seconds}))


if __name__ == "__main__":
    main()
