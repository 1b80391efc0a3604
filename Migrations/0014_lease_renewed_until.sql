-- Lease renewals without an index write, and an expiry sweep that filters on an index key
-- again (docs/ARCHITECTURE.md, "Leases").
--
-- 0013 made renewals HOT updates by keying jobs_running_idx by lease_owner instead of
-- lease_expires_at. The price was the expiry sweep: with no expiry in the index it read the row
-- of every entry, including those left by jobs finished since the last vacuum (8.9 ms per sweep
-- at 9k jobs/s, against ~1.5 ms when the index held the expiry). Now a claim still writes the
-- lease's end into lease_expires_at (an index key again, written by the claim's update, which
-- changes state and is never HOT anyway), and a renewal writes only lease_renewed_until, which
-- no index holds. A job's lease ends at the later of the two; the sweep reads through the index
-- only the entries whose claimed lease has passed and checks the renewal on those rows.
ALTER TABLE sluice.jobs ADD COLUMN lease_renewed_until timestamptz;
DROP INDEX sluice.jobs_running_idx;
CREATE INDEX jobs_running_idx ON sluice.jobs (lease_owner, lease_expires_at) WHERE state = 'running';
