DROP INDEX sluice.jobs_done_finished_idx; DROP INDEX sluice.jobs_dead_finished_idx; DROP INDEX sluice.jobs_tenant_rare_idx;
CREATE INDEX jobs_finished_idx ON sluice.jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE OR REPLACE FUNCTION sluice.prune(p_before timestamptz, p_dead_before timestamptz, p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, sluice SET jit = off AS $$
    -- SKIP LOCKED: never waits for a job row (see the lock order at the top of this file).
    WITH victims AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.finished_at IS NOT NULL
           AND ((j.state <> 'dead' AND j.finished_at < p_before) OR (j.state = 'dead' AND j.finished_at < p_dead_before))
         ORDER BY j.finished_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    ), del AS (
        DELETE FROM sluice.jobs j USING victims v WHERE j.id = v.id RETURNING j.id
    ), del_results AS (
        -- No foreign keys point at jobs (0001 explains why): a job's rows go with it here.
        DELETE FROM sluice.results r USING del d WHERE r.job_id = d.id
    ), del_attempts AS (
        DELETE FROM sluice.attempts a USING del d WHERE a.job_id = d.id
    ), del_dead AS (
        DELETE FROM sluice.dead_letters x USING del d WHERE x.job_id = d.id
    )
    SELECT count(*)::integer FROM del
$$;
