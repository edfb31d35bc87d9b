"""Writes a configuration and a data file for medallion (the OASIS reference TAXII 2.1 server,
memory backend): one API root with one collection of a partner's indicators, for farol's
TAXII client to pull in CI.

usage: medallion_data.py DIR  (writes DIR/config.json and DIR/data.json)
"""

import json
import os
import sys

out = sys.argv[1]
collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def indicator(n, pattern, marking):
    o = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--6b616fc1-1505-48e3-8b2c-0d19337bff{n:02d}",
        "created": "2026-11-01T10:00:00.000Z",
        "modified": "2026-11-01T10:00:00.000Z",
        "name": f"partner indicator {n}",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-11-01T10:00:00Z",
    }
    if marking:
        o["object_marking_refs"] = [marking]
    return o


objects = [
    indicator(1, "[ipv4-addr:value = '198.51.100.201']", green),
    indicator(2, "[domain-name:value = 'partner-c2.example']", None),
    indicator(3, "[ipv4-addr:value = '198.51.100.202'] AND [domain-name:value = 'x.example']", green),
]
manifest = [
    {
        "id": o["id"],
        "date_added": f"2026-11-01T10:00:0{n}.000000Z",
        "version": o["modified"],
        "media_type": "application/stix+json;version=2.1",
    }
    for n, o in enumerate(objects)
]
data = {
    "/discovery": {
        "title": "Partner TAXII",
        "default": "http://127.0.0.1/api1/",
        "api_roots": ["http://127.0.0.1/api1/"],
    },
    "api1": {
        "information": {
            "title": "Partner API root",
            "versions": ["application/taxii+json;version=2.1"],
            "max_content_length": 10485760,
        },
        "status": [],
        "collections": [
            {
                "id": collection,
                "title": "Indicators for partners",
                "can_read": True,
                "can_write": True,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects,
                "manifest": manifest,
            }
        ],
    },
}
with open(os.path.join(out, "data.json"), "w") as f:
    json.dump(data, f)
config = {
    "backend": {
        "module": "medallion.backends.memory_backend",
        "module_class": "MemoryBackend",
        "filename": os.path.join(out, "data.json"),
    },
    "users": {"farol": "a partner passphrase"},
    "taxii": {"max_page_size": 2},
}
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f)
print(f"/api1/collections/{collection}/")
