import Foundation
import Sluice
import SluicePostgres
import SluiceTestScope
import SluiceTestSupport
import Testing

/// The operator commands through the real binary, their --json output parsed.
@Suite("sluice operator commands", .migratedDatabase())
struct OperatorCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String

        /// stdout's JSON lines.
        func lines() throws -> [[String: Any]] {
            try stdout.split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
            }
        }

        func object() throws -> [String: Any] {
            let all = try lines()
            try #require(all.count == 1, "expected one JSON line, got \(stdout)")
            return all[0]
        }
    }

    func sluice(_ db: MigratedDatabase, _ arguments: [String]) async throws -> Run {
        let result = try await ChildProcess.run(
            EnqueueCommandTests.sluice.path, arguments + ["--database-url", db.url, "--log-level", "error"])
        guard case .exited(let status) = result.status else {
            Issue.record("sluice \(arguments): \(result.status)")
            return Run(status: -1, stdout: result.standardOutput, stderr: result.standardError)
        }
        return Run(status: status, stdout: result.standardOutput, stderr: result.standardError)
    }

    /// `count` dead jobs of `tenant` (with dead letters), as the worker leaves them.
    func deadJobs(_ db: MigratedDatabase, _ tenant: String, count: Int, errorClass: String = "server_error") async throws -> [UUID] {
        let ids = try await db.client.enqueue(batch: (0..<count).map { i in
            JobSpec(tenant: tenant, provider: "echo", model: "echo", request: chat("dead \(i)"), maxAttempts: 2)
        }).map(\.id)
        _ = try await db.postgres.query("""
            UPDATE sluice.jobs SET state = 'dead', attempt = 2, started_at = now(), finished_at = now(),
                   last_error_class = $2, last_error = 'boom' WHERE id = ANY($1)
            """, [ids, errorClass])
        _ = try await db.postgres.query("""
            INSERT INTO sluice.dead_letters (job_id, tenant, error_class, reason, last_error, attempts)
            SELECT id, tenant, $2, 'attempts exhausted', 'boom', 2 FROM sluice.jobs WHERE id = ANY($1)
            """, [ids, errorClass])
        _ = try await db.postgres.query("""
            INSERT INTO sluice.attempts (job_id, attempt, tenant, worker, started_at, finished_at, outcome, http_status, error_class, error_message)
            SELECT id, a, tenant, 'w1', now(), now(), 'failed', 500, $2, 'boom' FROM sluice.jobs, generate_series(1, 2) a WHERE id = ANY($1)
            """, [ids, errorClass])
        return ids
    }

    // MARK: Routes

    @Test func routesSetShowDeleteAndARouteJobsAttempts() async throws {
        let db = try MigratedDatabase.current
        _ = try await db.postgres.query("INSERT INTO sluice.models VALUES ('openai', 'gpt-4o'), ('anthropic', 'claude-sonnet-4-5') ON CONFLICT DO NOTHING")
        let set = try await sluice(db, ["routes", "set", "support-chat", "anthropic/claude-sonnet-4-5", "openai/gpt-4o", "--json"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(try set.object()["targets"] as? [String] == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"])
        let shown = try await sluice(db, ["routes", "show", "--json"]).object()
        #expect(shown["name"] as? String == "support-chat")
        #expect(shown["source"] as? String == "operator")

        for (arguments, text) in [(["routes", "set", "r", "openai/gpt-9"], "targets[0]"), (["routes", "set", "r", "gpt-4o"], "provider/model"),
                                  (["routes", "set", "Bad", "openai/gpt-4o"], "name"), (["routes", "delete", "nope"], "unknown route")] {
            let refused = try await sluice(db, arguments)
            #expect(refused.status == 2, "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.contains(text), "\(arguments): \(refused.stderr)")
        }

        // A route job: jobs show names the route, each attempt's target and why it moved on.
        let id = try await db.client.enqueue(JobSpec(tenant: "acme", target: .route("support-chat"), request: chat("hi"))).id
        _ = try await db.postgres.query("""
            INSERT INTO sluice.attempts (job_id, attempt, tenant, started_at, outcome, error_class, provider, model, fallback, skipped)
            VALUES ($1, 1, 'acme', now(), 'failed', 'overloaded', 'anthropic', 'claude-sonnet-4-5', 'overloaded: moved on to openai/gpt-4o', NULL),
                   ($1, 2, 'acme', now(), 'failed', 'server_error', 'openai', 'gpt-4o', NULL,
                    '[{"target": "anthropic/claude-sonnet-4-5", "reason": "circuit breaker open"}]')
            """, [id])
        let job = try await sluice(db, ["jobs", "show", id.uuidString, "--json"]).object()
        #expect(job["route"] as? String == "support-chat")
        let attempts = try #require(job["attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["target"] as? String } == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"])
        #expect(attempts[0]["fallback"] as? String == "overloaded: moved on to openai/gpt-4o")
        #expect((attempts[1]["skipped"] as? [[String: Any]])?.first?["reason"] as? String == "circuit breaker open")

        let inUse = try await sluice(db, ["routes", "delete", "support-chat"])
        #expect(inUse.status == 1)
        #expect(inUse.stderr.contains("1 queued or running jobs"), "\(inUse.stderr)")
        #expect(try await sluice(db, ["routes", "delete", "support-chat", "--force"]).status == 0)
        #expect(try await sluice(db, ["routes", "show", "--json"]).stdout.isEmpty)
    }

    /// The configuration file's routes are written by `sluice migrate`; a route an operator
    /// set is never overwritten by the file.
    @Test func migrateWritesFileRoutesButNotOverOperatorRoutes() async throws {
        let db = try MigratedDatabase.current
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-routes-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        func migrate(_ yaml: String) async throws -> (status: ChildProcess.ExitStatus, standardOutput: String, standardError: String) {
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            environment["SLUICE_CONFIG"] = path
            return try await ChildProcess.run(EnqueueCommandTests.sluice.path, ["migrate", "--database-url", db.url, "--log-level", "error"],
                                              environment: environment)
        }
        let first = try await migrate("routes:\n  cheap: [openai/gpt-4o-mini]\n  chat: [anthropic/claude-sonnet-4-5, openai/gpt-4o]\n")
        #expect(first.status == .exited(0), "\(first.standardError)")
        var routes = try await JobStore(postgres: db.postgres).routes()
        #expect(routes.map(\.name) == ["chat", "cheap"])
        #expect(routes.allSatisfy { $0.source == .file })
        try await JobStore(postgres: db.postgres).setRoute(Route(name: "chat", targets: [RouteTarget(provider: "openai", model: "gpt-4o")]))
        let second = try await migrate("routes:\n  cheap: [openai/gpt-4.1-mini]\n  chat: [anthropic/claude-sonnet-4-5]\n")
        #expect(second.status == .exited(0), "\(second.standardError)")
        routes = try await JobStore(postgres: db.postgres).routes()
        #expect(routes.map { $0.targets.map(\.description) } == [["openai/gpt-4o"], ["openai/gpt-4.1-mini"]])
        let bad = try await migrate("routes:\n  r: [openai/gpt-9]\n")
        #expect(bad.status != .exited(0))
        #expect(bad.standardError.contains("routes.r[0]"), "\(bad.standardError)")
    }

    @Test func limitsSetPerAPIKey() async throws {
        let db = try MigratedDatabase.current
        _ = try await db.postgres.query("INSERT INTO sluice.models VALUES ('openai', 'gpt-4o') ON CONFLICT DO NOTHING")
        let set = try await sluice(db, ["limits", "set", "--provider", "openai", "--model", "gpt-4o", "--key-id", "team-a", "--rpm", "5", "--json"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(try set.object()["key_id"] as? String == "team-a")
        _ = try await sluice(db, ["limits", "set", "--provider", "openai", "--model", "gpt-4o", "--rpm", "50"])
        let shown = try await sluice(db, ["limits", "show", "--json"]).object()
        let models = try #require(shown["models"] as? [[String: Any]])
        #expect(models.map { $0["key_id"] as? String } .sorted { ($0 ?? "") < ($1 ?? "") } == [nil, "team-a"])
        #expect(models.first { $0["key_id"] == nil }?["rpm"] as? Int == 50)
        let bad = try await sluice(db, ["limits", "set", "--provider", "openai", "--model", "gpt-4o", "--key-id", "sk-Secret", "--rpm", "5"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--key-id"), "\(bad.stderr)")
    }

    @Test func tenantsSetSoftBudgetDemotion() async throws {
        let db = try MigratedDatabase.current
        #expect(try await sluice(db, ["tenants", "create", "acme"]).status == 0)
        try await JobStore(postgres: db.postgres).setRoute(Route(name: "cheap", targets: [RouteTarget(provider: "echo", model: "echo")]))
        let set = try await sluice(db, ["tenants", "set", "acme", "--soft-lane", "batch", "--soft-route", "cheap"])
        #expect(set.status == 0, "\(set.stderr)")
        let shown = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(shown["soft_lane"] as? String == "batch")
        #expect(shown["soft_route"] as? String == "cheap")
        for (arguments, text) in [(["--soft-lane", "interactive"], "--soft-lane"), (["--soft-route", "nope"], "unknown route nope")] {
            let refused = try await sluice(db, ["tenants", "set", "acme"] + arguments)
            #expect(refused.status == 2, "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.contains(text), "\(arguments): \(refused.stderr)")
        }
        #expect(try await sluice(db, ["tenants", "set", "acme", "--soft-lane", "none", "--soft-route", "none"]).status == 0)
        let cleared = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(cleared["soft_lane"] is NSNull)
    }

    // MARK: Tenants

    @Test func tenantsCreateShowSetPauseResumeAndRotate() async throws {
        let db = try MigratedDatabase.current
        let created = try await sluice(db, ["tenants", "create", "acme", "--max-concurrency", "7", "--json"])
        #expect(created.status == 0, "\(created.stderr)")
        let secret = try #require(try created.object()["secret"] as? String)
        #expect(secret.hasPrefix("whsec_"))
        #expect(Data(base64Encoded: String(secret.dropFirst(6)))?.count == 32)

        let again = try await sluice(db, ["tenants", "create", "acme"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("exists already"))

        let set = try await sluice(db, ["tenants", "set", "acme", "--max-queued", "20", "--webhook-url", "https://hooks.example.com/in?token=abc"])
        #expect(set.status == 0, "\(set.stderr)")
        _ = try await sluice(db, ["tenants", "pause", "acme"])
        var shown = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(shown["id"] as? String == "acme")
        #expect(shown["max_concurrency"] as? Int == 7)
        #expect(shown["max_queued"] as? Int == 20)
        #expect(shown["paused"] as? Bool == true)
        #expect(shown["webhook_url"] as? String == "https://hooks.example.com/in")  // the token is not shown
        #expect(shown["active_secrets"] as? Int == 1)
        let createdAt = shown["created_at"] as? String ?? ""
        #expect((try? #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#.wholeMatch(in: createdAt)) != nil, "\(createdAt)")
        _ = try await sluice(db, ["tenants", "resume", "acme"])

        let rotated = try await sluice(db, ["tenants", "rotate-secret", "acme", "--json"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let newSecret = try #require(try rotated.object()["secret"] as? String)
        #expect(newSecret != secret && newSecret.hasPrefix("whsec_"))
        shown = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(shown["paused"] as? Bool == false)
        #expect(shown["active_secrets"] as? Int == 2)  // the old one signs during the grace period
        #expect(try await db.count("SELECT count(*) FROM sluice.tenant_secrets WHERE tenant = 'acme' AND expires_at IS NOT NULL") == 1)
        // No secret in any listing.
        let list = try await sluice(db, ["tenants", "list", "--json"])
        #expect(try list.lines().map { $0["id"] as? String } == ["acme"])
        #expect(!list.stdout.contains("whsec_"))
    }

    @Test func tenantsSetRateLimitsAndBudgets() async throws {
        let db = try MigratedDatabase.current
        _ = try await sluice(db, ["tenants", "create", "acme"])
        let set = try await sluice(db, ["tenants", "set", "acme", "--rpm", "120", "--tpm", "90000", "--daily-tokens", "50000",
                                        "--monthly-usd", "12.5", "--soft-fraction", "0.8"])
        #expect(set.status == 0, "\(set.stderr)")
        var shown = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(shown["rpm"] as? Int == 120)
        #expect(shown["tpm"] as? Int == 90000)
        #expect(shown["daily_tokens"] as? Int == 50000)
        #expect(shown["monthly_usd"] as? Double == 12.5)
        #expect(shown["soft_fraction"] as? Double == 0.8)
        // A held tenant shows the hold; raising its budget releases it (trigger).
        _ = try await db.postgres.query(
            "UPDATE sluice.tenants SET held_until = now() + interval '1 hour', hold_reason = 'daily token budget of 50000 spent' WHERE id = 'acme'")
        shown = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(shown["hold_reason"] as? String == "daily token budget of 50000 spent")
        #expect(try await sluice(db, ["tenants", "set", "acme", "--daily-tokens", "0", "--rpm", "0"]).status == 0)
        shown = try await sluice(db, ["tenants", "show", "acme", "--json"]).object()
        #expect(shown["daily_tokens"] == nil || shown["daily_tokens"] is NSNull)
        #expect(shown["rpm"] == nil || shown["rpm"] is NSNull)
        #expect(shown["hold_reason"] == nil || shown["hold_reason"] is NSNull)
        // Bad values: exit 2, the flag named, nothing half-applied.
        for arguments in [["--rpm", "-1"], ["--daily-usd", "-3"], ["--soft-fraction", "1.5"], ["--tpm", "5", "--soft-fraction", "2"]] {
            let run = try await sluice(db, ["tenants", "set", "acme"] + arguments)
            #expect(run.status == 2, "\(arguments): \(run.stderr)")
            #expect(run.stderr.contains(arguments[arguments.count - 2]), "\(arguments): \(run.stderr)")
        }
        #expect(try await db.count("SELECT count(*) FROM sluice.tenants WHERE id = 'acme' AND tpm = 90000") == 1)
    }

    @Test func tenantsSetWeight() async throws {
        let db = try MigratedDatabase.current
        _ = try await sluice(db, ["tenants", "create", "acme", "--weight", "2.5"])
        #expect(try await sluice(db, ["tenants", "show", "acme", "--json"]).object()["weight"] as? Double == 2.5)
        #expect(try await sluice(db, ["tenants", "set", "acme", "--weight", "4"]).status == 0)
        #expect(try await sluice(db, ["tenants", "list"]).stdout.contains("weight 4"))
        #expect(try await sluice(db, ["tenants", "show", "acme"]).stdout.contains("weight: 4"))
        for bad in ["0", "-1", "1001", "nan"] {
            let run = try await sluice(db, ["tenants", "set", "acme", "--weight", bad])
            #expect(run.status == 2, "\(bad): \(run.stderr)")
            #expect(run.stderr.hasPrefix("Error: ") && run.stderr.contains("weight"), "\(bad): \(run.stderr)")
        }
        #expect(try await db.count("SELECT count(*) FROM sluice.tenants WHERE id = 'acme' AND weight = 4") == 1)
    }

    @Test func tenantsBadInputIsAUsageError() async throws {
        let db = try MigratedDatabase.current
        _ = try await sluice(db, ["tenants", "create", "acme"])
        for arguments in [["tenants", "show", "nope"], ["tenants", "set", "nope", "--max-concurrency", "3"],
                          ["tenants", "set", "acme", "--max-concurrency", "0"], ["tenants", "set", "acme"],
                          ["tenants", "set", "acme", "--webhook-url", "http://insecure.example.com/"],
                          ["tenants", "create", "Bad Name"], ["tenants", "pause", "nope"],
                          ["tenants", "rotate-secret", "acme", "--grace", "soon"]] {
            let run = try await sluice(db, arguments)
            #expect(run.status == 2, "\(arguments): \(run.status) \(run.stderr)")
            #expect(run.stderr.hasPrefix("Error: "), "\(arguments): \(run.stderr)")
        }
        let unknown = try await sluice(db, ["tenants", "show", "nope"])
        #expect(unknown.stderr.contains("sluice tenants create nope"))
    }

    // MARK: Unknown tenants are refused by default (0005)

    @Test(.migratedDatabase(autoCreateTenants: false))
    func anUnknownTenantIsRefusedNamingTheCommandThatCreatesIt() async throws {
        let db = try MigratedDatabase.current
        let error = await #expect(throws: SluiceError.self) {
            _ = try await db.client.enqueue(JobSpec(tenant: "acmee", provider: "echo", model: "echo", request: chat("hi")))
        }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains("acmee") == true)
        #expect(error?.message.contains("sluice tenants create acmee") == true)
        #expect(try await db.count("SELECT count(*) FROM sluice.tenants") == 0)
        // Created on purpose, it takes jobs; the setting brings the old behaviour back.
        #expect(try await sluice(db, ["tenants", "create", "acmee"]).status == 0)
        _ = try await db.client.enqueue(JobSpec(tenant: "acmee", provider: "echo", model: "echo", request: chat("hi")))
        _ = try await db.postgres.query("UPDATE sluice.settings SET auto_create_tenants = true")
        _ = try await db.client.enqueue(JobSpec(tenant: "other", provider: "echo", model: "echo", request: chat("hi")))
        #expect(try await db.count("SELECT count(*) FROM sluice.tenants") == 2)
    }

    // MARK: Dead letters

    @Test func dlqListAndShowWithHistory() async throws {
        let db = try MigratedDatabase.current
        let ids = try await deadJobs(db, "acme", count: 2)
        _ = try await deadJobs(db, "globex", count: 1, errorClass: "invalid_request")
        let list = try await sluice(db, ["dlq", "list", "--tenant", "acme", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(Set(try list.lines().compactMap { $0["job_id"] as? String }) == Set(ids.map { $0.uuidString.lowercased() }))
        let byClass = try await sluice(db, ["dlq", "list", "--error-class", "invalid_request", "--json"]).lines()
        #expect(byClass.map { $0["tenant"] as? String } == ["globex"])
        let show = try await sluice(db, ["dlq", "show", ids[0].uuidString, "--json"]).object()
        #expect(show["error_class"] as? String == "server_error")
        #expect(show["replayed_at"] is NSNull)
        let history = try #require(show["history"] as? [[String: Any]])
        #expect(history.map { $0["attempt"] as? Int } == [1, 2])
        #expect(history.first?["http_status"] as? Int == 500)
        let missing = try await sluice(db, ["dlq", "show", UUID().uuidString])
        #expect(missing.status == 2)
        let malformed = try await sluice(db, ["dlq", "list", "--since", "yesterday"])
        #expect(malformed.status == 2)
        #expect(malformed.stderr.contains("not a duration"))
    }

    @Test func replayDryRunChangesNothingThenReplaysEachExactlyOnce() async throws {
        let db = try MigratedDatabase.current
        let ids = try await deadJobs(db, "acme", count: 5)
        let dry = try await sluice(db, ["dlq", "replay", "--tenant", "acme", "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(try dry.object()["matched"] as? Int == 5)
        #expect(try dry.object()["dry_run"] as? Bool == true)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE replay_of IS NOT NULL") == 0)
        #expect(try await db.count("SELECT count(*) FROM sluice.dead_letters WHERE replayed_at IS NOT NULL") == 0)

        let replay = try await sluice(db, ["dlq", "replay", "--tenant", "acme", "--lane", "batch", "--json"])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(try replay.object()["replayed"] as? Int == 5)
        // Each dead letter: one fresh queued job linked to it, recorded on the dead letter.
        #expect(try await db.count("""
            SELECT count(*) FROM sluice.dead_letters d JOIN sluice.jobs j ON j.id = d.replayed_as
             WHERE j.replay_of = d.job_id AND j.state = 'queued' AND j.lane = 'batch' AND d.replayed_by IS NOT NULL
               AND d.job_id = ANY($1)
            """, [ids]) == 5)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE replay_of IS NOT NULL") == 5)

        // Again with filters: nothing left to replay. By id: refused, unless --force.
        let again = try await sluice(db, ["dlq", "replay", "--tenant", "acme", "--json"])
        #expect(try again.object()["replayed"] as? Int == 0)
        let byID = try await sluice(db, ["dlq", "replay", "--id", ids[0].uuidString])
        #expect(byID.status == 1)
        #expect(byID.stderr.contains("replayed already"))
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE replay_of IS NOT NULL") == 5)
        let forced = try await sluice(db, ["dlq", "replay", "--id", ids[0].uuidString, "--force", "--json"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try forced.object()["replayed"] as? Int == 1)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE replay_of = $1", [ids[0]]) == 2)
        let unknown = try await sluice(db, ["dlq", "replay", "--id", UUID().uuidString])
        #expect(unknown.status == 2)
    }

    @Test func anInterruptedReplayResumesWithoutDuplicates() async throws {
        let db = try MigratedDatabase.current
        let ids = try await deadJobs(db, "acme", count: 40)
        // A paced replay (5/s: batches of 5, a second apart, 8 s for all 40) killed after its first batch…
        let child = try ChildProcess.spawn(
            EnqueueCommandTests.sluice.path,
            ["dlq", "replay", "--tenant", "acme", "--rate", "5/s", "--batch-size", "10", "--database-url", db.url, "--log-level", "error"],
            standardError: .capture)
        for _ in 0..<200 {
            if try await db.count("SELECT count(*) FROM sluice.dead_letters WHERE replayed_at IS NOT NULL") >= 5 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        child.send(SIGKILL)
        _ = await child.waitForExit(timeout: .seconds(10))
        let before = try await db.count("SELECT count(*) FROM sluice.dead_letters WHERE replayed_at IS NOT NULL")
        #expect(before >= 5 && before < 40, "replayed \(before) before the kill")
        // Marks and jobs agree at the kill (one transaction per batch).
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE replay_of IS NOT NULL") == before)
        // …and run again: the rest, once each.
        let resumed = try await sluice(db, ["dlq", "replay", "--tenant", "acme", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try resumed.object()["replayed"] as? Int == 40 - before)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE replay_of = ANY($1)", [ids]) == 40)
        #expect(try await db.count("SELECT count(DISTINCT replay_of) FROM sluice.jobs WHERE replay_of = ANY($1)", [ids]) == 40)
    }

    @Test func aLargeReplayNeedsYesOutsideATerminal() async throws {
        let db = try MigratedDatabase.current
        _ = try await deadJobs(db, "acme", count: 101)
        let refused = try await sluice(db, ["dlq", "replay"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("--yes"))
        #expect(try await db.count("SELECT count(*) FROM sluice.dead_letters WHERE replayed_at IS NOT NULL") == 0)
        let done = try await sluice(db, ["dlq", "replay", "--yes", "--json"])
        #expect(try done.object()["replayed"] as? Int == 101)
    }

    @Test func purgeDeletesOldDeadLettersWithTheirJobs() async throws {
        let db = try MigratedDatabase.current
        let old = try await deadJobs(db, "acme", count: 3)
        let recent = try await deadJobs(db, "acme", count: 2)
        _ = try await db.postgres.query("UPDATE sluice.dead_letters SET dead_at = now() - interval '40 days' WHERE job_id = ANY($1)", [old])
        #expect(try await sluice(db, ["dlq", "purge", "--older-than", "30d"]).status == 2)  // needs --yes in a pipe
        let purge = try await sluice(db, ["dlq", "purge", "--older-than", "30d", "--yes", "--json"])
        #expect(try purge.object()["purged"] as? Int == 3)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs WHERE id = ANY($1)", [old]) == 0)
        #expect(try await db.count("SELECT count(*) FROM sluice.attempts WHERE job_id = ANY($1)", [old]) == 0)
        #expect(try await db.count("SELECT count(*) FROM sluice.dead_letters WHERE job_id = ANY($1)", [recent]) == 2)
        #expect(try await sluice(db, ["dlq", "purge", "--older-than", "a while"]).status == 2)
    }

    // MARK: Stats, jobs, results, webhooks, prune

    @Test func statsJSONHasTheDocumentedFields() async throws {
        let db = try MigratedDatabase.current
        _ = try await db.client.enqueue(batch: (0..<3).map { _ in JobSpec(tenant: "acme", lane: .high, provider: "echo", model: "echo", request: chat("x")) })
        _ = try await deadJobs(db, "globex", count: 2)
        let stats = try await sluice(db, ["stats", "--json"])
        #expect(stats.status == 0, "\(stats.stderr)")
        let object = try stats.object()
        for key in ["queued", "running", "succeeded", "dead", "cancelled", "by_lane", "by_tenant", "workers", "dead_letters",
                    "rates", "webhooks", "oldest_queued_seconds"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["queued"] as? Int == 3)
        #expect(object["dead"] as? Int == 2)
        #expect(object["dead_letters"] as? Int == 2)
        #expect(((object["by_lane"] as? [String: Any])?["high"] as? [String: Any])?["queued"] as? Int == 3)
        #expect(((object["by_tenant"] as? [String: Any])?["acme"] as? [String: Any])?["queued"] as? Int == 3)
        #expect((object["workers"] as? [String: Any])?["live"] as? Int == 0)
        #expect(((object["rates"] as? [String: Any])?["dead"] as? [String: Any])?["1m"] as? Int == 2)
        #expect(try await sluice(db, ["stats"]).stdout.contains("queued 3"))
    }

    @Test func jobsListFiltersAcrossTenantsAndResultsShow() async throws {
        let db = try MigratedDatabase.current
        let a = try await db.client.enqueue(JobSpec(tenant: "acme", provider: "echo", model: "echo", request: chat("a"))).id
        let b = try await db.client.enqueue(JobSpec(tenant: "globex", lane: .batch, provider: "echo", model: "echo", request: chat("b"))).id
        let all = try await sluice(db, ["jobs", "list", "--json"]).lines()
        #expect(Set(all.compactMap { $0["id"] as? String }) == Set([a, b].map { $0.uuidString.lowercased() }))
        let batch = try await sluice(db, ["jobs", "list", "--lane", "batch", "--state", "queued", "--since", "1h", "--json"]).lines()
        #expect(batch.map { $0["id"] as? String } == [b.uuidString.lowercased()])
        #expect(try await sluice(db, ["jobs", "list", "--since", "1h", "--tenant", "acme", "--json"]).lines().count == 1)
        for bad in [["jobs", "list", "--state", "done"], ["jobs", "list", "--lane", "fast"], ["jobs", "list", "--since", "3 days"],
                    ["jobs", "show", "not-a-uuid"], ["jobs", "show", UUID().uuidString], ["results", "show", UUID().uuidString]] {
            let run = try await sluice(db, bad)
            #expect(run.status == 2, "\(bad): \(run.status) \(run.stderr)")
        }
        // A result, written as a worker writes it.
        _ = try await db.postgres.query("UPDATE sluice.jobs SET state = 'succeeded', attempt = 1, started_at = now(), finished_at = now() WHERE id = $1", [a])
        _ = try await db.postgres.query("""
            INSERT INTO sluice.results (job_id, tenant, output_text, input_tokens, output_tokens, cost_usd, provider, model)
            VALUES ($1, 'acme', 'hello there', 3, 2, 0.00001, 'echo', 'echo')
            """, [a])
        let result = try await sluice(db, ["results", "show", a.uuidString, "--json"]).object()
        #expect(result["output_text"] as? String == "hello there")
        #expect(result["output_tokens"] as? Int == 2)
        #expect(try await sluice(db, ["results", "show", b.uuidString]).status == 2)  // queued: no result yet
        let cancelled = try await sluice(db, ["jobs", "cancel", b.uuidString, "--json"]).object()
        #expect(cancelled["state"] as? String == "cancelled")
    }

    @Test func webhooksListAndRedeliver() async throws {
        let db = try MigratedDatabase.current
        _ = try await sluice(db, ["tenants", "create", "acme", "--webhook-url", "https://hooks.example.com/x"])
        let id = try await db.client.enqueue(JobSpec(tenant: "acme", provider: "echo", model: "echo", request: chat("a"))).id
        #expect(try await db.client.cancel(id) == .cancelled)
        _ = try await db.postgres.query("UPDATE sluice.webhook_deliveries SET state = 'failed', attempts = 8, last_status = 500, last_error = 'down'")
        let failed = try await sluice(db, ["webhooks", "list", "--failed", "--tenant", "acme", "--json"]).lines()
        try #require(failed.count == 1)
        #expect(failed[0]["job_id"] as? String == id.uuidString.lowercased())
        #expect(failed[0]["event"] as? String == "job.cancelled")
        #expect(failed[0]["last_status"] as? Int == 500)
        #expect((failed[0]["webhook_id"] as? String)?.hasPrefix("msg_") == true)
        let redeliver = try await sluice(db, ["webhooks", "redeliver", "--failed", "--since", "1h", "--json"]).object()
        #expect(redeliver["redelivered"] as? Int == 1)
        #expect(try await db.count("SELECT count(*) FROM sluice.webhook_deliveries WHERE state = 'pending' AND attempts = 0") == 1)
        #expect(try await sluice(db, ["webhooks", "list", "--failed", "--json"]).stdout.isEmpty)
        #expect(try await sluice(db, ["webhooks", "redeliver", UUID().uuidString]).status == 2)
        #expect(try await sluice(db, ["webhooks", "redeliver", "--failed"]).status == 2)
        #expect(try await sluice(db, ["webhooks", "list", "--since", "soon"]).status == 2)
    }

    @Test func pruneRunsTheRetentionNow() async throws {
        let db = try MigratedDatabase.current
        let id = try await db.client.enqueue(JobSpec(tenant: "acme", provider: "echo", model: "echo", request: chat("a"))).id
        _ = try await db.client.cancel(id)
        _ = try await db.postgres.query("UPDATE sluice.jobs SET finished_at = now() - interval '8 days'")
        let prune = try await sluice(db, ["prune", "--json"]).object()
        #expect(prune["jobs"] as? Int == 1)
        #expect(try await db.count("SELECT count(*) FROM sluice.jobs") == 0)
        #expect(try await sluice(db, ["prune", "--retention", "forever"]).status == 2)
    }
}
