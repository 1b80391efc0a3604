import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// The same bad inputs through the Swift API and the SQL API must fail with the same field
/// and rule (one definition in SQL: sluice.spec_ok / sluice.check_spec, see ValidationAgreementTests).
@Suite("Validation", .migratedDatabase())
struct ValidationTests {
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var tenant = "acme"
        var lane = "normal"
        var provider = "echo"
        var model = "echo"
        var request = #"{"messages":[{"role":"user","content":"hi"}]}"#
        var options = "{}"
        var field: String
        var rule: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "tenant format", tenant: "Acme Corp", field: "tenant", rule: "format"),
        Case(name: "lane unknown", lane: "urgent", field: "lane", rule: "known"),
        Case(name: "provider unknown", provider: "nope", field: "provider", rule: "known"),
        Case(name: "model unknown", model: "gpt-9", field: "model", rule: "known"),
        Case(name: "messages missing", request: #"{"prompt":"hi"}"#, field: "request.messages", rule: "required"),
        Case(name: "messages empty", request: #"{"messages":[]}"#, field: "request.messages", rule: "non_empty"),
        Case(name: "role invalid", request: #"{"messages":[{"role":"robot","content":"x"}]}"#, field: "request.messages[0].role", rule: "known"),
        Case(name: "content type", request: #"{"messages":[{"role":"user","content":[{"type":"video"}]}]}"#,
             field: "request.messages[0].content[0].type", rule: "known"),
        Case(name: "role not a string", request: #"{"messages":[{"role":5,"content":"x"}]}"#, field: "request.messages[0].role", rule: "known"),
        Case(name: "content part type not a string", request: #"{"messages":[{"role":"user","content":[{"type":7}]}]}"#,
             field: "request.messages[0].content[0].type", rule: "known"),
        Case(name: "content missing", request: #"{"messages":[{"role":"user"}]}"#, field: "request.messages[0].content", rule: "type"),
        Case(name: "max tokens range", request: #"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
             field: "request.max_tokens", rule: "range"),
        Case(name: "max_output_tokens cap", options: #"{"max_output_tokens":99999999}"#, field: "max_output_tokens", rule: "range"),
        Case(name: "max attempts", options: #"{"max_attempts":0}"#, field: "max_attempts", rule: "range"),
        Case(name: "timeout", options: #"{"timeout_ms":5}"#, field: "timeout_ms", rule: "range"),
        Case(name: "idempotency key length", options: "{\"idempotency_key\":\"\(String(repeating: "k", count: 300))\"}",
             field: "idempotency_key", rule: "length"),
        Case(name: "webhook http", options: #"{"webhook_url":"http://example.com/hook"}"#, field: "webhook_url", rule: "scheme"),
        Case(name: "webhook not a url", options: #"{"webhook_url":"not a url"}"#, field: "webhook_url", rule: "format"),
        Case(name: "run_at format", options: #"{"run_at":"tomorrow"}"#, field: "run_at", rule: "format"),
        Case(name: "run_at impossible date", options: #"{"run_at":"2026-02-30T10:00:00Z"}"#, field: "run_at", rule: "format"),
        Case(name: "traceparent", options: #"{"traceparent":"abc"}"#, field: "traceparent", rule: "format"),
        Case(name: "anthropic needs max tokens", provider: "anthropic", model: "claude-test",
             request: #"{"messages":[{"role":"user","content":"x"}]}"#, field: "max_output_tokens", rule: "required"),
        Case(name: "anthropic roles", provider: "anthropic", model: "claude-test",
             request: #"{"messages":[{"role":"system","content":"x"}],"max_tokens":5}"#, field: "request.messages[0].role", rule: "known"),
    ]

    /// Builds the Swift spec from the same JSON the SQL call gets.
    static func spec(_ c: Case) throws -> JobSpec {
        let options = try JSONSerialization.jsonObject(with: Data(c.options.utf8)) as! [String: Any]
        var spec = JobSpec(tenant: c.tenant, lane: .normal, provider: c.provider, model: c.model, request: JSONDocument(c.request))
        spec.maxOutputTokens = options["max_output_tokens"] as? Int
        spec.maxAttempts = options["max_attempts"] as? Int
        if let ms = options["timeout_ms"] as? Int { spec.timeout = .milliseconds(ms) }
        spec.idempotencyKey = options["idempotency_key"] as? String
        spec.webhookURL = options["webhook_url"] as? String
        spec.traceparent = options["traceparent"] as? String
        return spec
    }

    @Test(arguments: cases)
    func bothPathsRejectWithTheSameFieldAndRule(_ c: Case) async throws {
        let db = try TestDatabase.current
        _ = try await db.postgres.query("INSERT INTO sluice.models VALUES ('anthropic', 'claude-test') ON CONFLICT DO NOTHING")

        // Swift API. Lane and run_at are typed in Swift, so those cases go through the JSON path only.
        if c.field != "lane" && c.field != "run_at" {
            let spec = try Self.spec(c)
            do {
                _ = try await db.client.enqueue(spec)
                Issue.record("Swift API accepted \(c.name)")
            } catch {
                #expect(error.code == .invalidSpec)
                #expect(error.field == c.field)
                #expect(error.rule == c.rule)
            }
        }
        // SQL API.
        do {
            _ = try await db.postgres.query("SELECT sluice.enqueue($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
                                            [c.tenant, c.lane, c.provider, c.model, c.request, c.options])
            Issue.record("SQL API accepted \(c.name)")
        } catch let error as PostgresError {
            #expect(error.sqlState == "SL001")
            #expect(error.column == c.field)
            #expect(error.constraint == c.rule)
        }
        let count = try await db.postgres.query("SELECT count(*) FROM sluice.jobs").rows[0].decode(Int.self, at: 0)
        #expect(count == 0)
    }

    @Test func malformedRequestJSONIsRejectedBeforeTheDatabase() async throws {
        let db = try TestDatabase.current
        do {
            _ = try await db.client.enqueue(JobSpec(tenant: "acme", provider: "echo", model: "echo", request: JSONDocument("{nope")))
            Issue.record("accepted malformed JSON")
        } catch {
            #expect(error.field == "request")
            #expect(error.rule == "json")
        }
    }

    @Test func admissionControl() async throws {
        let db = try TestDatabase.current
        _ = try await db.client.enqueue(echoSpec("small", "1"))
        _ = try await db.postgres.query("UPDATE sluice.tenants SET max_queued_jobs = 2 WHERE id = 'small'")
        _ = try await db.client.enqueue(echoSpec("small", "2"))
        do {
            _ = try await db.client.enqueue(echoSpec("small", "3"))
            Issue.record("queue full not enforced")
        } catch {
            #expect(error.code == .queueFull)
            #expect(error.message.contains("2 queued jobs"))
        }
        _ = try await db.postgres.query("UPDATE sluice.tenants SET paused = true WHERE id = 'small'")
        do {
            _ = try await db.client.enqueue(echoSpec("small", "4"))
            Issue.record("paused not enforced")
        } catch {
            #expect(error.code == .tenantPaused)
        }
        _ = try await db.client.enqueue(echoSpec("rich", "1"))
        _ = try await db.postgres.query("UPDATE sluice.tenants SET daily_token_budget_hard = 100 WHERE id = 'rich'")
        _ = try await db.postgres.query("INSERT INTO sluice.usage_daily (tenant, day, tokens) VALUES ('rich', (now() AT TIME ZONE 'UTC')::date, 150)")
        do {
            _ = try await db.client.enqueue(echoSpec("rich", "2"))
            Issue.record("budget not enforced")
        } catch {
            #expect(error.code == .budgetExhausted)
        }
        let count = try await db.postgres.query("SELECT count(*) FROM sluice.jobs").rows[0].decode(Int.self, at: 0)
        #expect(count == 3)
        // Depth counters match the rows (cancel moves a job out of the queue).
        _ = try await db.client.cancel(try #require(try await db.client.list(tenant: "small").first).id)
        #expect(try await db.count("SELECT sluice.queue_depth('small')::int") == 1)
        #expect(try await db.count("SELECT count(*)::int FROM sluice.jobs WHERE tenant = 'small' AND state = 'queued'") == 1)
    }
}
