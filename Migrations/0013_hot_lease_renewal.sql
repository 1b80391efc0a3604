-- Lease renewals as HOT updates (docs/ARCHITECTURE.md, "Leases and heartbeats").
--
-- A worker renews the lease of every running job it holds once per heartbeat (3 s by default),
-- so a call of 30 s is renewed ~10 times: for LLM calls, heartbeats are most of the writes to
-- job rows. jobs_running_idx had lease_expires_at as a key, so no renewal could be a HOT
-- update: each one wrote a new entry into every index of the row (primary key, tenant listing,
-- running) and left a dead one behind for vacuum. Measured on 512 running jobs renewed 200 times
-- (20,000 finished jobs beside them): 12.4-13.4 ms per renewal of 512, 0 % HOT, 54.5 MB of WAL,
-- the primary key and tenant index +136 KiB. With the index keyed by lease_owner instead and
-- fillfactor 90: 5.9 ms, 97 % HOT, 15.9 MB of WAL, no index growth.
--
-- The new key serves what reads running jobs by worker (the supervisor's rescue of a dead
-- child, `sluice workers`). The rescue of expired leases now reads every running job's row
-- (the running set is bounded by the workers' slots: ~2-3 ms for 10,000 running jobs), so
-- sluice.rescue_expired is paced cluster-wide through sluice.sweeps instead of once per worker
-- process per interval.
--
-- fillfactor 90 leaves room on each new heap page for the updated versions of its rows, which
-- a HOT update needs (existing pages keep their layout until they are rewritten).
DROP INDEX sluice.jobs_running_idx;
CREATE INDEX jobs_running_idx ON sluice.jobs (lease_owner) WHERE state = 'running';
ALTER TABLE sluice.jobs SET (fillfactor = 90);

-- Cluster-wide pacing of periodic sweeps: a sweep runs only when its row's swept_at is older
-- than the caller's interval, and takes the row SKIP LOCKED (a sweep in progress elsewhere
-- means this one is not needed).
CREATE TABLE sluice.sweeps (
    name     text PRIMARY KEY,
    swept_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO sluice.sweeps (name) VALUES ('rescue');
