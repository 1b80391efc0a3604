-- Retention at scale (docs/ARCHITECTURE.md, "History and retention").
--
-- sluice.prune looked for its victims through jobs_finished_idx (finished_at, every finished
-- job) with the two retentions in one OR: no index bound applied, so a round with nothing
-- past the retention walked the whole index and fetched every finished row to look at its
-- state (2 M finished jobs: 2.5 s per round, growing with the history; the elected pruner
-- runs one every minute). And dead jobs, kept 30 days instead of 7, sat at the front of the
-- ordinary jobs' range: every batch would step over all dead jobs aged 7-30 days again.
--
-- Two partial indexes instead, one per retention, so each victim scan is a bounded range read
-- from its oldest entry: the rows it reads are the rows it deletes.
DROP INDEX sluice.jobs_finished_idx;
CREATE INDEX jobs_done_finished_idx ON sluice.jobs (finished_at) WHERE state IN ('succeeded', 'cancelled');
CREATE INDEX jobs_dead_finished_idx ON sluice.jobs (finished_at) WHERE state = 'dead';

-- `sluice jobs list --tenant T --state dead|cancelled` (newest first, keyset by id): these
-- states are rare, so neither the tenant index (tenant, id) nor the dead jobs' retention index
-- found 50 of them without reading a share of the whole history (2 M finished jobs, 20 k dead:
-- 125 ms, growing with the history). A small partial index keeps that listing a range read of
-- the tenant's rare-state jobs; common states (succeeded, queued) are found near the newest end
-- of jobs_tenant_idx as before.
CREATE INDEX jobs_tenant_rare_idx ON sluice.jobs (tenant, id) WHERE state IN ('dead', 'cancelled');
