"""Drives farol's TAXII 2.1 server with the OASIS client (taxii2-client, from PyPI): discovery,
the collections, every object page by page, the manifest, adding objects and reading their
status. Writes what it read as a STIX bundle, for stix2-validator.

usage: taxii_interop.py BASE_URL EMAIL PASSWORD BUNDLE_OUT
"""

import json
import sys
import uuid

from taxii2client.v21 import Server, as_pages

base, email, password, out = sys.argv[1:5]

server = Server(f"{base}/taxii2/", user=email, password=password)
print(f"discovery: {server.title}, {len(server.api_roots)} API root(s)")
root = server.default or server.api_roots[0]
collections = {c.alias: c for c in root.collections}
print("collections:", ", ".join(sorted(collections)))
constituency = collections["constituency"]
assert constituency.can_read and constituency.can_write

objects = []
for envelope in as_pages(constituency.get_objects, per_request=3):
    objects.extend(envelope.get("objects", []))
ids = [o["id"] for o in objects]
indicators = [o for o in objects if o["type"] == "indicator"]
assert indicators, "the constituency's collection holds indicators"
print(f"objects: {len(objects)} in pages of 3, {len(indicators)} indicators")

manifest = []
for page in as_pages(constituency.get_manifest, per_request=5):
    manifest.extend(page.get("objects", []))
assert sorted(m["id"] for m in manifest) == sorted(ids), "the manifest lists the objects"

one = constituency.get_object(indicators[0]["id"])
assert one["objects"][0]["id"] == indicators[0]["id"]
versions = constituency.object_versions(indicators[0]["id"])
assert versions["versions"] == [indicators[0]["modified"]]

new = {
    "type": "indicator",
    "spec_version": "2.1",
    "id": f"indicator--{uuid.uuid4()}",
    "created": "2026-11-01T00:00:00.000Z",
    "modified": "2026-11-01T00:00:00.000Z",
    "name": "CI phishing page",
    "pattern": "[url:value = 'http://ci.example/login']",
    "pattern_type": "stix",
    "valid_from": "2026-11-01T00:00:00Z",
    "labels": ["phishing"],
    "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
}
status = constituency.add_objects(json.dumps({"objects": [new]}))
assert status.status == "complete" and status.success_count == 1 and status.failure_count == 0, status
status.refresh()
assert status.total_count == 1
print(f"added: status {status.id} {status.status}")

after = []
for envelope in as_pages(constituency.get_objects, per_request=50, type="indicator"):
    after.extend(envelope.get("objects", []))
assert any(o["pattern"] == new["pattern"] for o in after), "the new indicator is served"

with open(out, "w") as f:
    json.dump({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}, f)
print("taxii2-client: ok")
