-- Fill sluice.jobs for the "Claim path EXPLAIN" capture (docs/ARCHITECTURE.md).
-- Run against a fresh database with all Migrations/000*.sql then R*.sql applied.
-- 50 tenants, 1,000,000 finished ('succeeded') jobs, 100,000 queued jobs over the four lanes.
\set ON_ERROR_STOP 1
SET search_path TO sluice, public;

-- 50 tenants t00..t49; max_concurrency well above what 22 claims of 100 can hand out
-- (<= ~2,200 running in all), so concurrency never caps a claim during the capture.
INSERT INTO sluice.tenants (id, max_concurrency)
SELECT 't' || lpad(t::text, 2, '0'), 1000
  FROM generate_series(0, 49) AS t;

-- 1,000,000 finished jobs over the past 7 days (inserted first, so their uuid_v7 ids are older).
INSERT INTO sluice.jobs (tenant, lane, state, provider, model, request, run_at, attempt,
                         lease_owner, created_at, started_at, finished_at)
SELECT 't' || lpad((i % 50)::text, 2, '0'),
       (CASE WHEN (i / 50) % 100 < 2 THEN 'interactive' WHEN (i / 50) % 100 < 10 THEN 'high'
             WHEN (i / 50) % 100 < 60 THEN 'normal' ELSE 'batch' END)::sluice.lane,
       'succeeded', 'echo', 'echo', '{"messages":[{"role":"user","content":"x"}]}'::jsonb,
       ts, 1, 'w0', ts, ts + interval '1 second', ts + interval '3 seconds'
  FROM generate_series(1, 1000000) AS i,
       LATERAL (SELECT now() - interval '7 days' + (i * interval '7 days' / 1000000) - interval '1 hour' AS ts) x;

-- 100,000 queued jobs, all runnable (run_at within the last hour), spread over the 50 tenants
-- and the lanes: 2% interactive, 8% high, 50% normal, 40% batch.
INSERT INTO sluice.jobs (tenant, lane, state, provider, model, request, run_at, created_at)
SELECT 't' || lpad((i % 50)::text, 2, '0'),
       (CASE WHEN (i / 50) % 100 < 2 THEN 'interactive' WHEN (i / 50) % 100 < 10 THEN 'high'
             WHEN (i / 50) % 100 < 60 THEN 'normal' ELSE 'batch' END)::sluice.lane,
       'queued', 'echo', 'echo', '{"messages":[{"role":"user","content":"x"}]}'::jsonb,
       ts, ts
  FROM generate_series(1, 100000) AS i,
       LATERAL (SELECT now() - interval '1 hour' + (i * interval '1 hour' / 100000) - interval '1 second' AS ts) x;

VACUUM ANALYZE sluice.jobs;
