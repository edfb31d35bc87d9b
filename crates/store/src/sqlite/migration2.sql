-- Version 2: what a feed's collector remembers between runs (an HTTP ETag, a checkpoint).
ALTER TABLE feeds ADD COLUMN collector_state TEXT;
