// The files of this folder, compiled into the binary by SwiftPM (`.embedInCode`), so a copied
// `sluice` binary carries its schema. A new migration file must be added to `files` below;
// the test SchemaFilesTests fails when a .sql file of this folder is not listed.

/// The migration files of `Migrations/`, embedded in the binary: versioned
/// `NNNN_description.sql` files (never edited once released) and repeatable `Rdescription.sql`
/// files (functions and views, edited in place). See docs/ARCHITECTURE.md, "Schema evolution".
package enum SluiceMigrationFiles {
    /// (file name, UTF-8 contents), in no particular order.
    package static let all: [(name: String, bytes: [UInt8])] = [
        ("0001_job_store.sql", PackageResources._001_job_store_sql),
        ("0002_submit_api.sql", PackageResources._002_submit_api_sql),
        ("0003_worker.sql", PackageResources._003_worker_sql),
        ("0005_webhooks.sql", PackageResources._005_webhooks_sql),
        ("0006_limits.sql", PackageResources._006_limits_sql),
        ("0008_fair_queueing.sql", PackageResources._008_fair_queueing_sql),
        ("0009_routes.sql", PackageResources._009_routes_sql),
        ("0010_retention_indexes.sql", PackageResources._010_retention_indexes_sql),
        ("0011_running_counters.sql", PackageResources._011_running_counters_sql),
        ("0012_claim_head_hint.sql", PackageResources._012_claim_head_hint_sql),
        ("0013_hot_lease_renewal.sql", PackageResources._013_hot_lease_renewal_sql),
        ("0014_lease_renewed_until.sql", PackageResources._014_lease_renewed_until_sql),
        ("R10_store.sql", PackageResources.R10_store_sql),
        ("R20_tenancy.sql", PackageResources.R20_tenancy_sql),
        ("R30_validation.sql", PackageResources.R30_validation_sql),
        ("R40_enqueue.sql", PackageResources.R40_enqueue_sql),
        ("R50_status.sql", PackageResources.R50_status_sql),
        ("R60_claim.sql", PackageResources.R60_claim_sql),
        ("R70_lifecycle.sql", PackageResources.R70_lifecycle_sql),
        ("R80_limits.sql", PackageResources.R80_limits_sql),
        ("R80_webhooks.sql", PackageResources.R80_webhooks_sql),
    ]
}
