-- Lease renewals as before 0013 and 0014, for A/B runs: the running-jobs index keyed by
-- (tenant, lease_expires_at), fillfactor 100, and sluice.renew_leases writing lease_expires_at
-- (an index key, so no renewal can be HOT).
-- scripts/chaos --release --only lease-renewal --after-migrate-sql docs/bench/lease-renewal-before.sql
DROP INDEX sluice.jobs_running_idx;
CREATE INDEX jobs_running_idx ON sluice.jobs (tenant, lease_expires_at) WHERE state = 'running';
ALTER TABLE sluice.jobs SET (fillfactor = 100);
CREATE OR REPLACE FUNCTION sluice.renew_leases(p_worker text, p_ids uuid[], p_lease interval)
RETURNS TABLE (id uuid, owned boolean, cancel_requested boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, sluice SET jit = off SET enable_seqscan = off AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- Rows are found by primary key only (docs/ARCHITECTURE.md, "Plans and statistics"):
    -- `state::text` keeps the partial index of running jobs out of it (with statistics taken
    -- while no job ran, the planner expected ~1 running row and read the whole running index
    -- once per id: 0.5-0.9 s for 1,000 ids), and the update reads the locked ids as an array.
    RETURN QUERY
    WITH mine AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'running' AND j.lease_owner = p_worker
    ), locked AS (
        SELECT j.id FROM sluice.jobs j
         WHERE j.id = ANY (p_ids) AND j.state::text = 'running' AND j.lease_owner = p_worker
         ORDER BY j.id
           FOR NO KEY UPDATE OF j SKIP LOCKED
    ), renewed AS (
        UPDATE sluice.jobs j SET lease_expires_at = now() + p_lease
         WHERE j.id = ANY (ARRAY(SELECT l.id FROM locked l)) AND j.state::text = 'running' AND j.lease_owner = p_worker
        RETURNING j.id, j.cancel_requested
    )
    SELECT i.id, r.id IS NOT NULL OR (m.id IS NOT NULL AND l.id IS NULL), coalesce(r.cancel_requested, false)
      FROM unnest(p_ids) AS i(id)
      LEFT JOIN renewed r ON r.id = i.id
      LEFT JOIN mine m ON m.id = i.id
      LEFT JOIN locked l ON l.id = i.id;
END
$$;
