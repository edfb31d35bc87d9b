-- Version 15: an organization's id is never handed out again. SQLite gives a new row the id
-- after the largest, so removing the newest organization freed its id, and the next one added
-- inherited what still names the old one: events routed to it (until `farol reroute`) and audit
-- entries. `last` is the largest id ever given, seeded from the organizations and the audit log.
CREATE TABLE org_ids (last INTEGER NOT NULL);
INSERT INTO org_ids (last)
    SELECT max(coalesce((SELECT max(id) FROM orgs), 0), coalesce((SELECT max(org_id) FROM audit), 0));
