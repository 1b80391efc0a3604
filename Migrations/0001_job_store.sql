-- Sluice job store: tenants, jobs (with a small hot claim index), results, attempts,
-- dead letters, worker registry, the provider/model registry used by validation, and usage
-- accounting. Everything lives in schema `sluice`. See docs/ARCHITECTURE.md.

CREATE SCHEMA IF NOT EXISTS sluice;

-- ---------------------------------------------------------------------------------------
-- Types
-- ---------------------------------------------------------------------------------------
-- Declared in priority order: ORDER BY lane serves interactive first.
CREATE TYPE sluice.lane AS ENUM ('interactive', 'high', 'normal', 'batch');
CREATE TYPE sluice.job_state AS ENUM ('queued', 'running', 'succeeded', 'dead', 'cancelled');

-- Time-ordered UUIDs (version 7: 48-bit Unix milliseconds, then random bits), so ids sort by
-- creation and keyset pagination over (tenant, id) is creation order. PostgreSQL 15 has no
-- built-in uuidv7().
CREATE FUNCTION sluice.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

-- ---------------------------------------------------------------------------------------
-- Configuration the operator controls: limits of validation, providers and models.
-- ---------------------------------------------------------------------------------------
CREATE TABLE sluice.settings (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_payload_bytes    integer NOT NULL DEFAULT 1048576 CHECK (max_payload_bytes > 0),
    max_output_tokens    integer NOT NULL DEFAULT 128000 CHECK (max_output_tokens > 0),
    max_idempotency_key  integer NOT NULL DEFAULT 255 CHECK (max_idempotency_key > 0),
    max_attempts_cap     integer NOT NULL DEFAULT 25 CHECK (max_attempts_cap > 0),
    max_batch_size       integer NOT NULL DEFAULT 10000 CHECK (max_batch_size > 0),
    allow_http_webhooks  boolean NOT NULL DEFAULT false,
    auto_create_tenants  boolean NOT NULL DEFAULT true,
    default_max_attempts integer NOT NULL DEFAULT 5,
    default_timeout_ms   integer NOT NULL DEFAULT 600000
);
INSERT INTO sluice.settings DEFAULT VALUES;

-- kind decides the request shape a job must have: openai (Chat Completions), anthropic
-- (Messages) or echo (the built-in test provider, which accepts either shape).
CREATE TABLE sluice.providers (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind text NOT NULL CHECK (kind IN ('openai', 'anthropic', 'echo'))
);

CREATE TABLE sluice.models (
    provider text NOT NULL REFERENCES sluice.providers (name) ON DELETE CASCADE,
    model    text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    PRIMARY KEY (provider, model)
);

-- Routes (resolved to a provider/model by the router, a later capability). A job names either
-- provider + model or provider 'route' + the route name as model.
CREATE TABLE sluice.routes (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    definition jsonb NOT NULL DEFAULT '{}'
);

INSERT INTO sluice.providers (name, kind) VALUES ('echo', 'echo'), ('openai', 'openai'), ('anthropic', 'anthropic');
INSERT INTO sluice.models (provider, model) VALUES ('echo', 'echo');

-- ---------------------------------------------------------------------------------------
-- Tenants
-- ---------------------------------------------------------------------------------------
-- Tenant ids are ASCII identifiers compared byte-wise (COLLATE "C"): the claim sorts and the
-- jobs indexes compare them constantly, and a locale collation (strcoll) made those
-- comparisons several times slower for no benefit.
CREATE TABLE sluice.tenants (
    id                      text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    max_concurrency         integer NOT NULL DEFAULT 50 CHECK (max_concurrency > 0),
    rpm                     integer CHECK (rpm > 0),
    tpm                     bigint CHECK (tpm > 0),
    max_queued_jobs         integer NOT NULL DEFAULT 1000000 CHECK (max_queued_jobs > 0),
    daily_token_budget_soft   bigint CHECK (daily_token_budget_soft > 0),
    daily_token_budget_hard   bigint CHECK (daily_token_budget_hard > 0),
    monthly_token_budget_soft bigint CHECK (monthly_token_budget_soft > 0),
    monthly_token_budget_hard bigint CHECK (monthly_token_budget_hard > 0),
    daily_usd_budget_soft     numeric(14, 6) CHECK (daily_usd_budget_soft > 0),
    daily_usd_budget_hard     numeric(14, 6) CHECK (daily_usd_budget_hard > 0),
    monthly_usd_budget_soft   numeric(14, 6) CHECK (monthly_usd_budget_soft > 0),
    monthly_usd_budget_hard   numeric(14, 6) CHECK (monthly_usd_budget_hard > 0),
    paused                  boolean NOT NULL DEFAULT false,
    webhook_url             text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Webhook signing secrets are kept apart from the tenants row so that no view, log line or
-- tenant role can read them (tenant roles get no privilege on this table).
CREATE TABLE sluice.tenant_secrets (
    tenant     text COLLATE "C" NOT NULL REFERENCES sluice.tenants (id) ON DELETE CASCADE,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, secret)
);

-- Token and USD spend per tenant and UTC day: what budgets are checked against. The worker
-- adds to it when it records an attempt's usage.
CREATE TABLE sluice.usage_daily (
    tenant   text COLLATE "C" NOT NULL REFERENCES sluice.tenants (id) ON DELETE CASCADE,
    day      date NOT NULL,
    tokens   bigint NOT NULL DEFAULT 0,
    cost_usd numeric(18, 8) NOT NULL DEFAULT 0,
    requests bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day)
);

-- Database roles bound to one tenant each (for the SQL API and row-level security).
CREATE TABLE sluice.tenant_roles (
    role_name name PRIMARY KEY,
    tenant    text COLLATE "C" NOT NULL REFERENCES sluice.tenants (id) ON DELETE CASCADE
);

-- ---------------------------------------------------------------------------------------
-- Jobs
-- ---------------------------------------------------------------------------------------
CREATE TABLE sluice.jobs (
    id                     uuid PRIMARY KEY DEFAULT sluice.uuid_v7(),
    -- No foreign key to tenants: a per-row RI trigger cost ~2-3 µs of every enqueued job
    -- (measured with COPY of 10k rows). sluice.enqueue_specs creates or rejects unknown
    -- tenants before inserting, and tenants_keep_jobs refuses to delete a tenant with jobs.
    tenant                 text COLLATE "C" NOT NULL,
    lane                   sluice.lane NOT NULL DEFAULT 'normal',
    state                  sluice.job_state NOT NULL DEFAULT 'queued',
    provider               text NOT NULL,
    model                  text NOT NULL,
    request                jsonb NOT NULL,
    stream                 boolean NOT NULL DEFAULT true,
    max_output_tokens      integer,
    estimated_input_tokens integer NOT NULL DEFAULT 0,
    run_at                 timestamptz NOT NULL DEFAULT now(),
    attempt                integer NOT NULL DEFAULT 0,
    max_attempts           integer NOT NULL DEFAULT 5,
    timeout_ms             integer NOT NULL DEFAULT 600000,
    idempotency_key        text,
    webhook_url            text,
    metadata               jsonb NOT NULL DEFAULT '{}',
    traceparent            text,
    cancel_requested       boolean NOT NULL DEFAULT false,
    lease_owner            text,
    lease_expires_at       timestamptz,
    last_error_class       text,
    last_error             text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz,
    CONSTRAINT jobs_attempts_valid CHECK (max_attempts > 0 AND attempt >= 0),
    CONSTRAINT jobs_finished_consistent CHECK ((state IN ('succeeded', 'dead', 'cancelled')) = (finished_at IS NOT NULL))
) WITH (
    -- The table churns (every job is inserted, updated two or three times, then pruned):
    -- vacuum early so dead tuples do not pile up in the claim index.
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- The claim index: only queued rows, ordered as the claim reads them. Finished and running
-- rows are not in it, so it stays the size of the backlog however large the table grows.
CREATE INDEX jobs_claim_idx ON sluice.jobs (tenant, lane, run_at, id) WHERE state = 'queued';
-- Running rows: the per-tenant concurrency count and the lease rescuer (the running set is
-- bounded by the workers' total concurrency, so the rescuer scans this small index whole
-- rather than paying a second index entry on every claim).
CREATE INDEX jobs_running_idx ON sluice.jobs (tenant, lease_expires_at) WHERE state = 'running';
-- Queued interactive jobs in age order, across tenants: a claim finds them wherever its window
-- of tenants is (see sluice.claim). Only interactive jobs have entries.
CREATE INDEX jobs_interactive_idx ON sluice.jobs (run_at, id) INCLUDE (tenant)
    WHERE state = 'queued' AND lane = 'interactive';
-- One job per (tenant, idempotency key).
CREATE UNIQUE INDEX jobs_idempotency_idx ON sluice.jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Listing a tenant's jobs newest first with keyset pagination (ids are time ordered).
CREATE INDEX jobs_tenant_idx ON sluice.jobs (tenant, id);
-- Retention pruning.
CREATE INDEX jobs_finished_idx ON sluice.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Per-tenant queue depth, kept by triggers, so admission control (max_queued_jobs) reads 16
-- small rows instead of counting the tenant's backlog on every enqueue.
--
-- (Counting the backlog on each enqueue instead cost O(backlog): 0.8 ms for 2,000 all-visible
-- rows, more for fresh ones, and held 16 concurrent single enqueues to ~800 jobs/s in total.)
--
-- The counters are sharded (16 rows per tenant, one chosen at random per statement) so
-- concurrent enqueuers of one tenant rarely wait on each other's row lock. The depth of a
-- tenant is the sum of its shards. Statement-level triggers with transition tables apply one
-- delta per tenant per statement, so a 10,000-job batch or a 200-job claim costs one upsert
-- per tenant.

CREATE TABLE sluice.tenant_queue_depth (
    tenant text COLLATE "C" NOT NULL,
    shard  smallint NOT NULL,
    queued bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, shard)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000);

CREATE FUNCTION sluice.track_queue_depth() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sluice AS $$
DECLARE
    s smallint := floor(random() * 16)::smallint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued)
        SELECT n.tenant, s, count(*) FROM new_rows n WHERE n.state = 'queued' GROUP BY n.tenant ORDER BY n.tenant
        ON CONFLICT (tenant, shard) DO UPDATE SET queued = d.queued + excluded.queued;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued)
        SELECT x.tenant, s, sum(x.delta) FROM (
            SELECT n.tenant, 1 AS delta FROM new_rows n WHERE n.state = 'queued'
            UNION ALL
            SELECT o.tenant, -1 FROM old_rows o WHERE o.state = 'queued') x
         GROUP BY x.tenant HAVING sum(x.delta) <> 0 ORDER BY x.tenant
        ON CONFLICT (tenant, shard) DO UPDATE SET queued = d.queued + excluded.queued;
    ELSE
        INSERT INTO sluice.tenant_queue_depth AS d (tenant, shard, queued)
        SELECT o.tenant, s, -count(*) FROM old_rows o WHERE o.state = 'queued' GROUP BY o.tenant ORDER BY o.tenant
        ON CONFLICT (tenant, shard) DO UPDATE SET queued = d.queued + excluded.queued;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_depth_insert AFTER INSERT ON sluice.jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sluice.track_queue_depth();
CREATE TRIGGER jobs_depth_update AFTER UPDATE ON sluice.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sluice.track_queue_depth();
CREATE TRIGGER jobs_depth_delete AFTER DELETE ON sluice.jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sluice.track_queue_depth();

-- Jobs refer to their tenant without a foreign key (see jobs.tenant); deleting a tenant that
-- still has jobs is refused here instead, once per deleted tenant rather than once per job.
CREATE FUNCTION sluice.tenants_keep_jobs() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, sluice AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sluice.jobs j WHERE j.tenant = OLD.id) THEN
        RAISE EXCEPTION 'tenant % still has jobs; prune or delete them first', OLD.id
            USING ERRCODE = 'foreign_key_violation', COLUMN = 'tenant', CONSTRAINT = 'tenant_has_jobs';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER tenants_keep_jobs BEFORE DELETE ON sluice.tenants
    FOR EACH ROW EXECUTE FUNCTION sluice.tenants_keep_jobs();

-- Results, attempts and dead letters belong to a job but carry no foreign key: the per-row
-- RI check (a FOR KEY SHARE probe of the job) cost 30-40 µs of every completed job, about half
-- of the completion statement. They are written only by sluice.finish_attempts and
-- sluice.rescue_expired in the same statement that updates their job, and deleted with it by
-- sluice.prune.
CREATE TABLE sluice.results (
    job_id             uuid PRIMARY KEY,
    tenant             text COLLATE "C" NOT NULL,
    output_text        text,
    tool_calls         jsonb NOT NULL DEFAULT '[]',
    finish_reason      text,
    raw_response       jsonb,
    input_tokens       integer NOT NULL DEFAULT 0,
    output_tokens      integer NOT NULL DEFAULT 0,
    cache_read_tokens  integer NOT NULL DEFAULT 0,
    cache_write_tokens integer NOT NULL DEFAULT 0,
    cost_usd           numeric(18, 8),
    provider           text NOT NULL,
    model              text NOT NULL,
    latency_ms         double precision,
    ttft_ms            double precision,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sluice.attempts (
    job_id             uuid NOT NULL,
    attempt            integer NOT NULL,
    tenant             text COLLATE "C" NOT NULL,
    worker             text,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz,
    outcome            text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'cancelled', 'lease_expired', 'interrupted')),
    http_status        integer,
    error_class        text,
    error_message      text,
    input_tokens       integer,
    output_tokens      integer,
    cache_read_tokens  integer,
    cache_write_tokens integer,
    cost_usd           numeric(18, 8),
    duration_ms        double precision,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE sluice.dead_letters (
    job_id       uuid PRIMARY KEY,
    tenant       text COLLATE "C" NOT NULL,
    error_class  text NOT NULL,
    reason       text NOT NULL,
    last_error   text,
    attempts     integer NOT NULL,
    dead_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    replayed_as  uuid,
    replayed_by  text
);
CREATE INDEX dead_letters_tenant_idx ON sluice.dead_letters (tenant, dead_at);

-- Live worker processes (each renews last_heartbeat_at; rows of dead processes expire).
CREATE TABLE sluice.workers (
    id                text PRIMARY KEY,
    host              text NOT NULL,
    pid               integer NOT NULL,
    lanes             text[] NOT NULL,
    concurrency       integer NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);
