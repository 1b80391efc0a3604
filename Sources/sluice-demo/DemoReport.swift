import Foundation
import SluiceHTTP
import SluicePostgres

/// The final report, read from the store (what an operator could query too), the workers'
/// `/metrics` and the mock provider's counters.
struct DemoReport {
    var postgres: PostgresClient

    func percentileRows(_ sql: String) async throws -> [(String, Int, Double, Double, Double)] {
        try await postgres.query(sql, []).rows.map {
            (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1), try $0.decode(Double?.self, at: 2) ?? 0,
             try $0.decode(Double?.self, at: 3) ?? 0, try $0.decode(Double?.self, at: 4) ?? 0)
        }
    }

    /// Pickup (enqueue → first start, including any wait for a rate limit or budget) per lane.
    func pickup() async throws -> [(String, Int, Double, Double, Double)] {
        try await percentileRows("""
            SELECT j.lane::text, count(*)::int8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - j.created_at))::float8,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - j.created_at))::float8,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - j.created_at))::float8
              FROM sluice.jobs j JOIN sluice.attempts a ON a.job_id = j.id AND a.attempt = 1
             GROUP BY j.lane ORDER BY j.lane
            """)
    }

    /// Time to first token and whole-call latency (ms) per provider/model, from the results.
    func latency(_ column: String) async throws -> [(String, Int, Double, Double, Double)] {
        try await percentileRows("""
            SELECT provider || '/' || model, count(\(column))::int8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY \(column))::float8,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY \(column))::float8,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY \(column))::float8
              FROM sluice.results GROUP BY 1 ORDER BY 1
            """)
    }

    struct TenantUsage {
        var tenant: String
        var succeeded: Int, dead: Int, retried: Int
        var inputTokens: Int, outputTokens: Int
        var costUSD: Double
    }

    func usage() async throws -> [TenantUsage] {
        try await postgres.query("""
            SELECT j.tenant::text,
                   count(*) FILTER (WHERE j.state = 'succeeded')::int8,
                   count(*) FILTER (WHERE j.state = 'dead')::int8,
                   count(*) FILTER (WHERE j.state = 'succeeded' AND j.attempt > 1)::int8,
                   coalesce(sum(r.input_tokens), 0)::int8, coalesce(sum(r.output_tokens), 0)::int8,
                   coalesce(sum(r.cost_usd), 0)::float8
              FROM sluice.jobs j LEFT JOIN sluice.results r ON r.job_id = j.id
             GROUP BY j.tenant ORDER BY j.tenant
            """, []).rows.map {
            TenantUsage(tenant: try $0.decode(String.self, at: 0), succeeded: try $0.decode(Int.self, at: 1),
                        dead: try $0.decode(Int.self, at: 2), retried: try $0.decode(Int.self, at: 3),
                        inputTokens: try $0.decode(Int.self, at: 4), outputTokens: try $0.decode(Int.self, at: 5),
                        costUSD: try $0.decode(Double.self, at: 6))
        }
    }

    /// Dead letters per tenant and error class.
    func deadLetters() async throws -> [(tenant: String, errorClass: String, count: Int)] {
        try await postgres.query("""
            SELECT tenant::text, error_class, count(*)::int8 FROM sluice.dead_letters
             WHERE replayed_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2
            """, []).rows.map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(Int.self, at: 2)) }
    }

    /// Webhook deliveries per state.
    func webhookStates() async throws -> [String: Int] {
        var states: [String: Int] = [:]
        for row in try await postgres.query("SELECT state::text, count(*)::int8 FROM sluice.webhook_deliveries GROUP BY 1", []).rows {
            states[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1)
        }
        return states
    }

    /// Jobs per state, and the seconds from the first enqueue to the last finish.
    func totals() async throws -> (states: [String: Int], span: Double, lostResults: Int) {
        var states: [String: Int] = [:]
        for row in try await postgres.query("SELECT state::text, count(*)::int8 FROM sluice.jobs GROUP BY 1", []).rows {
            states[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1)
        }
        let span = try await postgres.query(
            "SELECT coalesce(extract(epoch FROM max(finished_at) - min(created_at)), 0)::float8 FROM sluice.jobs", []).rows[0]
            .decode(Double.self, at: 0)
        // A succeeded job without its result row would be a lost result.
        let lost = try await postgres.query("""
            SELECT count(*)::int8 FROM sluice.jobs j WHERE j.state = 'succeeded'
               AND NOT EXISTS (SELECT 1 FROM sluice.results r WHERE r.job_id = j.id)
            """, []).rows[0].decode(Int.self, at: 0)
        return (states, span, lost)
    }
}

/// Reads counters from the workers' `/metrics` (Prometheus text), summed over processes.
struct DemoMetrics {
    var http: HTTPClient
    var ports: [Int]

    /// The sum of every sample of `name`, grouped by the value of `label` ("" when absent).
    func sum(_ name: String, by label: String) async -> [String: Double] {
        var totals: [String: Double] = [:]
        for port in ports {
            guard let response = try? await http.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/metrics")),
                  let body = try? await response.body.collect(upTo: 16 << 20) else { continue }
            for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name) {
                let rest = line.dropFirst(name.count)
                guard rest.first == "{" || rest.first == " " else { continue }
                var key = ""
                if let open = rest.firstIndex(of: "{"), let close = rest.firstIndex(of: "}") {
                    for pair in rest[rest.index(after: open)..<close].split(separator: ",") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        if parts.count == 2, parts[0] == label { key = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
                    }
                }
                if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { totals[key, default: 0] += value }
            }
        }
        return totals
    }
}
