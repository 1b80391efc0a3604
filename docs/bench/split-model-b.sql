-- variant B: runnable jobs in a small table of their own; running ones in another; the job row
-- is written once, at completion. Triggers off, the claim and running indexes of jobs dropped.
ALTER TABLE sluice.jobs DISABLE TRIGGER USER;
CREATE TABLE sluice.ready (tenant text COLLATE "C" NOT NULL, lane sluice.lane NOT NULL, run_at timestamptz NOT NULL, id uuid NOT NULL);
INSERT INTO sluice.ready SELECT tenant, lane, run_at, id FROM sluice.jobs WHERE state = 'queued';
CREATE INDEX ready_idx ON sluice.ready (tenant, lane, run_at, id);
CREATE TABLE sluice.runs (job_id uuid PRIMARY KEY, worker text NOT NULL, lease_expires_at timestamptz NOT NULL, attempt integer NOT NULL, started_at timestamptz NOT NULL);
DROP INDEX sluice.jobs_claim_idx;
DROP INDEX sluice.jobs_running_idx;
VACUUM ANALYZE sluice.jobs; VACUUM ANALYZE sluice.ready;
