-- The running-jobs index and fillfactor of sluice.jobs before 0013 (lease renewals could not be
-- HOT updates), for A/B runs: scripts/chaos --release --only lease-renewal --after-migrate-sql
-- docs/bench/lease-renewal-before.sql
DROP INDEX sluice.jobs_running_idx;
CREATE INDEX jobs_running_idx ON sluice.jobs (tenant, lease_expires_at) WHERE state = 'running';
ALTER TABLE sluice.jobs SET (fillfactor = 100);
