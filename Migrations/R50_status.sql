-- Repeatable migration (see docs/ARCHITECTURE.md, "Schema evolution"). The R files are applied
-- in name order, after the versioned ones, whenever any of them changed. Edit in place; every
-- statement must be safe to run again (CREATE OR REPLACE; DROP FUNCTION IF EXISTS first when a
-- signature or return type changes). Tables, types, indexes, triggers, policies and grants
-- belong in new versioned files.
--
-- Status, cancel and the security_invoker views.

-- ---------------------------------------------------------------------------------------
-- Status and cancel
-- ---------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION sluice.job_status(job uuid)
RETURNS TABLE (id uuid, tenant text, lane text, state text, attempt integer, max_attempts integer,
               run_at timestamptz, created_at timestamptz, started_at timestamptz, finished_at timestamptz,
               cancel_requested boolean, last_error_class text, last_error text)
LANGUAGE sql STABLE SET search_path = pg_catalog, sluice AS $$
    SELECT j.id, j.tenant, j.lane::text, j.state::text, j.attempt, j.max_attempts, j.run_at, j.created_at,
           j.started_at, j.finished_at, j.cancel_requested, j.last_error_class, j.last_error
      FROM sluice.jobs j WHERE j.id = job
$$;

-- Cancels a job: a queued job becomes cancelled at once; a running job gets cancel_requested
-- and its worker is told (NOTIFY sluice_cancel) to abort the call; a finished job is left as
-- it is. Returns the job's state afterwards. SECURITY DEFINER (tenant roles may not update jobs
-- directly); a role bound to a tenant can cancel only that tenant's jobs, and another tenant's
-- job is "not found" to it, as under row-level security.
-- Locks one job row (docs/ARCHITECTURE.md, "Lock order"); a transaction that cancels several
-- jobs should cancel them in ascending id, the order every statement of the worker locks them in.
CREATE OR REPLACE FUNCTION sluice.cancel(job uuid) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    st sluice.job_state;
    me text := sluice.acting_tenant();
BEGIN
    SELECT j.state INTO st FROM sluice.jobs j WHERE j.id = job AND (me IS NULL OR j.tenant = me) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', job USING ERRCODE = 'SL005', COLUMN = 'id', CONSTRAINT = 'exists';
    END IF;
    IF st = 'queued' THEN
        UPDATE sluice.jobs SET state = 'cancelled', finished_at = now(), cancel_requested = true,
                               last_error_class = 'cancelled', last_error = 'cancelled before it started'
         WHERE id = job;
        PERFORM pg_notify('sluice_done', job::text);
        RETURN 'cancelled';
    ELSIF st = 'running' THEN
        UPDATE sluice.jobs SET cancel_requested = true WHERE id = job;
        PERFORM pg_notify('sluice_cancel', job::text);
        RETURN 'running';
    END IF;
    RETURN st::text;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Views (security_invoker, so row-level security applies to whoever queries them)
-- ---------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW sluice.job_view WITH (security_invoker = true) AS
    SELECT j.id, j.tenant, j.lane::text AS lane, j.state::text AS state, j.provider, j.model, j.attempt,
           j.max_attempts, j.run_at, j.created_at, j.started_at, j.finished_at, j.idempotency_key,
           j.metadata, j.cancel_requested, j.last_error_class, j.last_error
      FROM sluice.jobs j;

CREATE OR REPLACE VIEW sluice.result_view WITH (security_invoker = true) AS
    SELECT r.job_id, r.tenant, r.output_text, r.tool_calls, r.finish_reason, r.input_tokens, r.output_tokens,
           r.cache_read_tokens, r.cache_write_tokens, r.cost_usd, r.provider, r.model, r.latency_ms, r.ttft_ms,
           r.created_at
      FROM sluice.results r;
