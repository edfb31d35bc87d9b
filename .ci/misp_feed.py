"""Reads farol's MISP feed as a MISP instance would, with PyMISP (from PyPI): the manifest, each
event (loaded and checked by PyMISP), and hashes.csv; every event's manifest entry and hashes
must be what PyMISP computes from the event itself.

usage: misp_feed.py BASE_URL TOKEN
"""

import json
import sys
import urllib.request

from pymisp import MISPEvent

base, token = sys.argv[1:3]


def get(path):
    request = urllib.request.Request(f"{base}/misp/{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as response:
        return response.read().decode()


manifest = json.loads(get("manifest.json"))
assert manifest, "the feed has events"
hashes = {tuple(line.split(",")) for line in get("hashes.csv").splitlines()}
expected_hashes = set()
attributes = 0
for uuid, entry in manifest.items():
    event = MISPEvent()
    event.load(get(f"{uuid}.json"))
    assert event.uuid == uuid, (event.uuid, uuid)
    assert event.attributes, f"event {uuid} has attributes"
    for attribute in event.attributes:
        assert attribute.type in event.describe_types["types"], attribute.type
        assert attribute.category in event.describe_types["categories"], attribute.category
        assert attribute.type in event.describe_types["category_type_mappings"][attribute.category], (
            attribute.category,
            attribute.type,
        )
    attributes += len(event.attributes)
    ours = event.manifest[uuid]
    for key in ("info", "date", "timestamp"):
        assert str(ours[key]) == str(entry[key]), (key, ours[key], entry[key])
    assert [t["name"] for t in ours["Tag"]] == [t["name"] for t in entry["Tag"]]
    expected_hashes.update((h, uuid) for h in event.attributes_hashes("md5"))
assert hashes == expected_hashes, (sorted(hashes - expected_hashes), sorted(expected_hashes - hashes))
print(f"PyMISP: {len(manifest)} events, {attributes} attributes, hashes.csv and manifest agree")
