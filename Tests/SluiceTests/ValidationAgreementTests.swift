import Foundation
import Sluice
import SluicePostgres
import SluiceTestSupport
import Testing

/// Validation has two forms in SQL: `sluice.spec_ok` (one boolean expression, the fast path
/// that clears valid specs) and `sluice.check_spec` (the walk that names the first broken rule).
/// These tests generate specs around every rule and require that the two forms agree on each,
/// and that every accepted spec can actually be inserted (no untyped cast error at insert time).
@Suite("Validation agreement", .migratedDatabase())
struct ValidationAgreementTests {
    /// SplitMix64: reproducible specs (the seed is in the failure message).
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
    }

    /// Values of every JSON type, for fields that expect one of them.
    static let anyValues = [#"null"#, #"true"#, #"7"#, #"5.5"#, #""x""#, #"[]"#, #"{}"#, #"["user"]"#]

    /// Makes specs around every rule: each choice is valid, or (at `badRate` percent) one of the
    /// values that break or border on that rule. A spec made with badRate 0 is valid.
    struct Generator {
        var rng: Rng
        var badRate: UInt64 = 0

        mutating func choose(_ valid: [String], _ invalid: [String]) -> String {
            invalid.isEmpty || !rng.chance(badRate) ? rng.pick(valid) : rng.pick(invalid)
        }
        mutating func bad() -> Bool { rng.chance(badRate) }

        mutating func message(anthropic: Bool) -> String {
            if bad() && rng.chance(20) { return rng.pick(anyValues) }
            let roles = anthropic ? ["user", "assistant"] : ["system", "developer", "user", "assistant", "tool", "function"]
            let parts = anthropic ? ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"]
                : ["text", "image_url", "input_audio", "file", "refusal"]
            let role = choose(roles.map { "\"\($0)\"" }, [#""robot""#, #"5"#, #"null"#, #"["user"]"#, #""system""#, #""tool""#])
            var fields = [String]()
            if !(bad() && rng.chance(20)) { fields.append("\"role\":\(role)") }
            let part = { (g: inout Generator) -> String in
                g.choose(parts.map { "{\"type\":\"\($0)\",\"text\":\"t\"}" },
                         anyValues + [#"{"type":7}"#, #"{"type":"video"}"#, #"{"text":"no type"}"#])
            }
            let content = choose([#""content":"hello""#, #""content":"hello""#, "content-array"],
                                 ["", #""content":null"#, "\"content\":\(rng.pick(anyValues))"])
            if content == "content-array" {
                let items = (0..<Int(rng.next() % 3)).map { _ in part(&self) }
                fields.append("\"content\":[\(items.joined(separator: ","))]")
            } else if !content.isEmpty {
                fields.append(content)
            }
            if rng.chance(15) { fields.append(#""tool_calls":[]"#) }
            return "{\(fields.joined(separator: ","))}"
        }

        mutating func timestamp() -> String {
            let year = choose(["2026", "2024", "2100", "0001", "9999"], ["0000"])
            let month = choose(["01", "02", "04", "12"], ["13", "00"])
            let day = choose(["01", "28"], ["29", "30", "31", "32", "00"])   // 29-31: valid in some months only
            let time = choose(["00:00:00", "23:59:59", "12:00", "12:00:00.123456"], ["24:00:00", "12:60:00", "12:00:00.1234567", "7:00:00"])
            let zone = choose(["Z", "+00:00", "-05:30", "+15:59", "+0530", "+05"], ["+16:00", "", "z", "+05:60"])
            let separator = choose(["T", " "], ["t"])
            return "\(year)-\(month)-\(day)\(separator)\(time)\(zone)"
        }

        mutating func spec() -> String {
            if bad() && rng.chance(10) { return rng.pick(anyValues) }
            let provider = choose(["echo", "openai", "anthropic", "anthropic"], ["nope"])
            let anthropic = provider == "anthropic"
            var fields = [String]()
            let tenant = choose(["acme", "t-1", "a_b", String(repeating: "x", count: 63)].map { "\"\($0)\"" },
                                [#""Acme""#, #""-x""#, "\"\(String(repeating: "y", count: 64))\"", #"5"#, #"null"#, #""""#])
            if !(bad() && rng.chance(15)) { fields.append("\"tenant\":\(tenant)") }
            if rng.chance(40) {
                fields.append("\"lane\":" + choose(["\"interactive\"", "\"high\"", "\"normal\"", "\"batch\"", "null"],
                                                    [#""urgent""#, #"1"#, #"["high"]"#]))
            }
            if rng.chance(8) {
                fields.append("\"route\":" + choose([#""fast""#], [#""unknown-route""#, #"3"#]))
                if bad() { fields.append(#""provider":"echo""#) }
            } else {
                if !(bad() && rng.chance(15)) {
                    fields.append("\"provider\":" + choose(["\"\(provider)\""], anyValues))
                }
                let model = provider == "echo" ? "echo" : (anthropic ? "claude-test" : "gpt-test")
                if !(bad() && rng.chance(15)) { fields.append("\"model\":" + choose(["\"\(model)\""], [#""gpt-9""#, #"7"#])) }
            }
            var request = [String]()
            let messages = choose(["list"], ["", "\"messages\":\(rng.pick(anyValues))", #""messages":[]"#])
            if messages == "list" {
                let list = (0..<(1 + Int(rng.next() % 3))).map { _ in message(anthropic: anthropic) }
                request.append("\"messages\":[\(list.joined(separator: ","))]")
            } else if !messages.isEmpty {
                request.append(messages)
            }
            let tokens = [#"1"#, #"256"#, #"128000"#, #"5.0"#, #"1e3"#]
            let badTokens = [#"128001"#, #"0"#, #"-1"#, #"5.5"#, #""7""#, #"null"#]
            if rng.chance(40) || (anthropic && !bad()) { request.append("\"max_tokens\":\(choose(tokens, badTokens))") }
            if rng.chance(10) { request.append("\"max_completion_tokens\":\(choose(tokens, badTokens))") }
            if anthropic && rng.chance(20) { request.append("\"system\":" + choose([#""be brief""#, #"[]"#], [#"7"#, #"{}"#, #"null"#])) }
            if bad() && rng.chance(10) {
                fields.append("\"request\":\(rng.pick(anyValues))")
            } else if !(bad() && rng.chance(5)) {
                fields.append("\"request\":{\(request.joined(separator: ","))}")
            }
            if rng.chance(20) { fields.append("\"max_output_tokens\":" + choose(tokens + ["null"], Array(badTokens.dropLast()))) }
            if rng.chance(30) { fields.append("\"run_at\":" + choose(["\"\(timestamp())\"", "null"], anyValues.filter { $0 != "null" })) }
            if rng.chance(15) { fields.append("\"max_attempts\":" + choose(["1", "25", "3.0", "null"], ["26", "0", "2.5", "\"3\""])) }
            if rng.chance(15) { fields.append("\"timeout_ms\":" + choose(["1000", "86400000", "30000.0", "null"], ["999", "86400001", "true"])) }
            if rng.chance(20) {
                fields.append("\"idempotency_key\":" + choose(["\"k-1\"", "\"\(String(repeating: "k", count: 255))\"", "null"],
                                                               ["\"\"", "\"\(String(repeating: "k", count: 256))\"", "12"]))
            }
            if rng.chance(15) {
                fields.append("\"webhook_url\":" + choose(["\"https://example.com/hook\"", "\"HTTPS://EXAMPLE.COM:8443/x?y=1\"", "null"],
                                                           ["\"http://example.com/hook\"", "\"ftp://example.com\"", "\"not a url\"",
                                                            "\"https://user@host/x\"", "[]"]))
            }
            if rng.chance(10) { fields.append("\"metadata\":" + choose(["{}", #"{"k":1}"#, "null"], [#"[]"#, #""x""#, #"7"#])) }
            if rng.chance(10) {
                fields.append("\"traceparent\":" + choose(["\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"", "null"],
                                                           ["\"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"",
                                                            "\"00-00000000000000000000000000000000-b7ad6b7169203331-01\"",
                                                            "\"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01\"",
                                                            "\"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01\"",
                                                            "\"abc\"", "1"]))
            }
            if rng.chance(10) { fields.append("\"stream\":" + choose(["true", "false", "null"], ["1", #""yes""#])) }
            if bad() && rng.chance(5) { fields.append(#""priority":1"#) }
            return "{\(fields.joined(separator: ","))}"
        }
    }

    @Test func fastAndNamingFormsAgreeOnGeneratedSpecs() async throws {
        let db = try TestDatabase.current
        _ = try await db.postgres.query("INSERT INTO sluice.models VALUES ('anthropic', 'claude-test'), ('openai', 'gpt-test') ON CONFLICT DO NOTHING")
        // A route that mixes both wire formats, so its requests must also be translatable.
        _ = try await db.postgres.query("INSERT INTO sluice.routes (name, targets) VALUES ('fast', '{anthropic/claude-test,openai/gpt-test}')")
        let seed = UInt64(Date().timeIntervalSince1970 * 1000)
        // A third valid by construction; the rest with a broken or borderline choice at 15 %.
        var generator = Generator(rng: Rng(state: seed))
        let specs = (0..<4000).map { i -> String in
            generator.badRate = i % 3 == 0 ? 0 : 15
            return generator.spec()
        }
        let array = "[" + specs.joined(separator: ",") + "]"
        let result = try await db.postgres.query("""
            WITH x AS MATERIALIZED (SELECT sluice.validation_context() AS ctx)
            SELECT (t.ord - 1)::int, sluice.spec_ok(t.spec, x.ctx), sluice.check_spec(t.spec, x.ctx) IS NULL
              FROM x, jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(spec, ord)
             ORDER BY t.ord
            """, [array])
        var accepted: [String] = []
        var disagreements = 0
        for row in result.rows {
            let index = try row.decode(Int.self, at: 0)
            let fast = try row.decode(Bool?.self, at: 1)
            let named = try row.decode(Bool.self, at: 2)
            if (fast ?? false) != named {
                disagreements += 1
                if disagreements <= 5 {
                    Issue.record("seed \(seed): spec_ok says \(String(describing: fast)), check_spec says \(named ? "valid" : "invalid"): \(specs[index])")
                }
            }
            if named { accepted.append(specs[index]) }
        }
        #expect(disagreements == 0)
        // Both outcomes are well represented, so agreement is not trivial.
        #expect(accepted.count > 1000, "seed \(seed): only \(accepted.count) valid specs generated")
        #expect(accepted.count < 3000, "seed \(seed): \(accepted.count) of 4000 generated specs valid")

        // Every accepted spec is insertable: the insert's casts never fail on what validation let through.
        for chunk in stride(from: 0, to: accepted.count, by: 1000) {
            let batch = "[" + accepted[chunk..<min(chunk + 1000, accepted.count)].joined(separator: ",") + "]"
            do {
                _ = try await db.postgres.query("SELECT count(*) FROM sluice.enqueue_batch($1::jsonb)", [batch])
            } catch {
                Issue.record("seed \(seed): an accepted batch failed to insert: \(error)")
            }
        }
    }

    @Test func integralNumbersWithAFractionPartAreStoredAsIntegers() async throws {
        let db = try TestDatabase.current
        let id = try await db.postgres.query("""
            SELECT sluice.enqueue('acme', 'normal', 'echo', 'echo',
                                  '{"messages":[{"role":"user","content":"x"}],"max_tokens":64.0}',
                                  '{"max_attempts":3.0,"timeout_ms":30000.0}')
            """).rows[0].decode(UUID.self, at: 0)
        let job = try #require(try await db.client.job(id))
        #expect(job.maxOutputTokens == 64)
        #expect(job.maxAttempts == 3)
        #expect(job.timeout == .seconds(30))
    }

    @Test func batchIdsAreTimeOrderedVersion7AndAscendByIndex() async throws {
        let db = try TestDatabase.current
        let before = Date()
        let jobs = try await db.client.enqueue(batch: (0..<300).map { echoSpec("acme", "job \($0)") })
        let after = Date()
        #expect(Set(jobs.map(\.id)).count == 300)
        #expect(jobs.map(\.id.uuidString) == jobs.map(\.id.uuidString).sorted())
        for job in jobs {
            let bytes = job.id.uuid
            #expect(bytes.6 >> 4 == 7)                    // version 7
            #expect(bytes.8 >> 6 == 0b10)                 // RFC 9562 variant
            let millis = [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let stamp = Date(timeIntervalSince1970: Double(millis) / 1000)
            #expect(stamp >= before.addingTimeInterval(-0.002) && stamp <= after.addingTimeInterval(0.002))
        }
        // The ids the call returned are the rows' ids, in input order.
        let stored = try await db.postgres.query("SELECT id FROM sluice.jobs ORDER BY id").rows.map { try $0.decode(UUID.self, at: 0) }
        #expect(stored == jobs.map(\.id))
    }
}
