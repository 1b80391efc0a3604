-- variant A: the current shape (claim and completion both rewrite the job row), triggers off
ALTER TABLE sluice.jobs DISABLE TRIGGER USER;
UPDATE sluice.tenants SET max_concurrency = 10000000;
VACUUM ANALYZE sluice.jobs;
