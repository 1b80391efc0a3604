-- Rate limits, budgets and kill switches (the limiter; see docs/ARCHITECTURE.md, "Limits").
--
-- The token buckets themselves live in Redis (shared by every worker, taken atomically by one
-- script per job start). PostgreSQL holds what operators configure, which every worker reads
-- again on the next admission after a change (NOTIFY sluice_limits), and the holds that
-- make a tenant's queued jobs wait visibly.

-- Per provider/model limits (the provider's tier) and the model kill switch. A missing row, or
-- a NULL limit, means "no limit of that kind". rpm counts requests; tpm all tokens of a call;
-- input_tpm / output_tpm input and output tokens separately, for providers that limit them
-- separately (Anthropic).
CREATE TABLE sluice.model_limits (
    provider   text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    model      text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    rpm        integer CHECK (rpm > 0),
    tpm        bigint CHECK (tpm > 0),
    input_tpm  bigint CHECK (input_tpm > 0),
    output_tpm bigint CHECK (output_tpm > 0),
    -- Kill switch: no new starts while true; calls in flight finish.
    paused     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT current_user,
    PRIMARY KEY (provider, model)
);

-- A tenant whose hard budget is spent is held until the budget's window resets (held_until)
-- or an operator raises the limit (any change of a budget column clears the hold): the claim
-- skips held tenants, so their queued jobs stay queued, and hold_reason says why.
ALTER TABLE sluice.tenants
    ADD COLUMN held_until  timestamptz,
    ADD COLUMN hold_reason text,
    -- Fraction of a hard budget at which the soft warning fires when no soft limit is set.
    ADD COLUMN soft_fraction numeric(4, 3) CHECK (soft_fraction > 0 AND soft_fraction <= 1);

-- Why a queued job has not started yet (waiting for a rate-limit bucket, a cooldown, a paused
-- model, …), set when a worker puts a claimed job back without starting it, cleared when it
-- starts. NULL when nothing holds it.
ALTER TABLE sluice.jobs ADD COLUMN wait_reason text;

-- The trigger functions are owned by R80_limits.sql (edited there); they are created here too
-- because versioned files run before the repeatable ones.
CREATE FUNCTION sluice.limits_changed() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('sluice_limits', ''); RETURN NULL; END $$;
CREATE FUNCTION sluice.release_budget_hold() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;

CREATE TRIGGER model_limits_changed AFTER INSERT OR UPDATE OR DELETE ON sluice.model_limits
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.limits_changed();
CREATE TRIGGER tenants_limits_changed AFTER UPDATE ON sluice.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION sluice.limits_changed();
CREATE TRIGGER tenants_budget_raised BEFORE UPDATE ON sluice.tenants
    FOR EACH ROW EXECUTE FUNCTION sluice.release_budget_hold();

-- Operators only: tenant roles neither read nor change provider limits.
REVOKE ALL ON sluice.model_limits FROM PUBLIC;
