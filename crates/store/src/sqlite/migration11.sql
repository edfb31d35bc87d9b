-- Version 11: leases. A report being processed belongs to one process (its holder) until
-- lease_until; a worker takes a report that waits (stored) or whose holder's lease ran out.
ALTER TABLE reports ADD COLUMN holder TEXT;
ALTER TABLE reports ADD COLUMN lease_until INTEGER;
