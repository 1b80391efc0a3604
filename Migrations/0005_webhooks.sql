-- Result delivery by webhook (an outbox written with the terminal state change, delivered by
-- the workers' dispatchers), secret rotation, dead-letter replay links, and tenants created
-- only on purpose. Functions live in R80_webhooks.sql. See docs/ARCHITECTURE.md and README.

-- An unknown tenant is refused (naming it and `sluice tenants create`) instead of being created
-- by its first job: a misspelt tenant id no longer creates a tenant. The old behaviour stays
-- available: UPDATE sluice.settings SET auto_create_tenants = true.
ALTER TABLE sluice.settings ALTER COLUMN auto_create_tenants SET DEFAULT false;
UPDATE sluice.settings SET auto_create_tenants = false;

-- Rotation: a replaced secret keeps signing (a second signature) until expires_at.
ALTER TABLE sluice.tenant_secrets ADD COLUMN expires_at timestamptz;

-- A job created by `sluice dlq replay` names the dead job it replays (the dead letter names the
-- new job in replayed_as). No foreign key, like every reference to jobs (0001 explains why).
ALTER TABLE sluice.jobs ADD COLUMN replay_of uuid;

-- Delivery endpoints, by tenant and URL (a tenant's endpoint and every job's own URL): whether
-- the endpoint is failing, since when, and whether it was disabled (410 Gone, or failing for
-- longer than the dispatcher's disable period). Setting a tenant's webhook URL re-enables it.
CREATE TABLE sluice.webhook_endpoints (
    tenant          text COLLATE "C" NOT NULL,
    url             text NOT NULL,
    failing_since   timestamptz,
    last_success_at timestamptz,
    disabled_at     timestamptz,
    disabled_reason text,
    PRIMARY KEY (tenant, url)
);

-- The outbox: one row per (job, event), written in the same statement as the job's terminal
-- state (trigger jobs_webhooks), delivered by the dispatchers. The row id is the event's
-- webhook-id ("msg_" + id), the same on every retry. A claimed row's next_attempt_at is pushed
-- past the dispatcher's lease, so a dispatcher that dies mid-delivery leaves it due again.
CREATE TABLE sluice.webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT sluice.uuid_v7(),
    job_id          uuid NOT NULL,
    tenant          text COLLATE "C" NOT NULL,
    event           text NOT NULL CHECK (event IN ('job.succeeded', 'job.dead', 'job.cancelled')),
    url             text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (job_id, event)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
-- Due deliveries, in order (the dispatchers' claim); only pending rows have entries.
CREATE INDEX webhook_deliveries_due_idx ON sluice.webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- Listing a tenant's deliveries, and failed ones.
CREATE INDEX webhook_deliveries_tenant_idx ON sluice.webhook_deliveries (tenant, created_at);
CREATE INDEX webhook_deliveries_failed_idx ON sluice.webhook_deliveries (created_at) WHERE state = 'failed';

-- Row-level security: a tenant role sees its own deliveries and endpoints (never secrets).
ALTER TABLE sluice.webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE sluice.webhook_endpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_webhook_deliveries ON sluice.webhook_deliveries TO sluice_tenant
    USING (tenant = (SELECT sluice.current_tenant()));
CREATE POLICY tenant_webhook_endpoints ON sluice.webhook_endpoints TO sluice_tenant
    USING (tenant = (SELECT sluice.current_tenant()));
GRANT SELECT ON sluice.webhook_deliveries, sluice.webhook_endpoints TO sluice_tenant;

-- The outbox trigger. Statement-level with transition tables (as jobs_depth_update): one
-- INSERT per statement whatever path made jobs terminal (finish_attempts, rescue_expired,
-- cancel). The function body is in R80_webhooks.sql; this placeholder lets the trigger exist
-- before the repeatable files run.
CREATE FUNCTION sluice.jobs_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER jobs_webhooks AFTER UPDATE ON sluice.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sluice.jobs_webhooks();
