import Foundation
import Sluice
import SluiceMockProvider

/// What the demo runs: three tenants with different plans, the provider's behaviour, Sluice's
/// model limits and the jobs. Everything is derived from a seed, so two runs do the same work.
struct DemoPlan: Sendable {
    /// One tenant and the `sluice tenants create` flags that give it its plan.
    struct TenantPlan: Sendable {
        var id: String
        var story: String
        var flags: [String]
    }

    /// A wave of jobs: `count` jobs enqueued `perSecond` at a time (0 = all at once at the start).
    struct Wave: Sendable {
        var tenant: String
        var count: Int
        var perSecond: Int
        var make: @Sendable (Int, inout SplitMix64) -> JobSpec
    }

    var tenants: [TenantPlan]
    /// `sluice limits set` flags per provider/model (Sluice's configured limits, below the provider's).
    var modelLimits: [[String]]
    var mock: MockProviderConfiguration
    var waves: [Wave]
    /// The tenant whose daily token budget runs out mid-run, and the budget the operator raises it to.
    var budgetTenant: String
    var raisedBudget: Int
    /// Worker processes and slots per process.
    var processes: Int
    var concurrency: Int
    /// The longest the run may take before the demo gives up and reports what is unfinished.
    var deadline: Duration

    var totalJobs: Int { waves.reduce(0) { $0 + $1.count } }

    /// The full demo (about 1,800 jobs, a minute or two) or the short one (about 250 jobs, well under a minute).
    static func make(short: Bool) -> DemoPlan {
        let scale = short ? 0.15 : 1.0
        func n(_ full: Int) -> Int { max(10, Int((Double(full) * scale).rounded())) }
        let acmeJobs = n(600), globexJobs = n(800), initechJobs = n(360)
        // globex's plan (~775 tokens per document): in the full run about 40 % of its work fits
        // its TPM bucket at once (less the batch lane's 30 % headroom), the rest waits for refills.
        let globexTPM = short ? 150_000 : 360_000
        // initech's daily budget: reached about half way through its jobs.
        let initechBudget = initechJobs * 120
        return DemoPlan(
            tenants: [
                TenantPlan(id: "acme", story: "support chat: interactive and high lanes, arrives steadily, webhooks",
                           flags: ["--max-concurrency", "40", "--rpm", "3000"]),
                TenantPlan(id: "globex", story: "nightly summaries: one big batch-lane backlog, a \(globexTPM / 1000)k TPM plan, webhooks",
                           flags: ["--max-concurrency", "60", "--tpm", "\(globexTPM)"]),
                TenantPlan(id: "initech", story: "internal tools: normal lane, two providers, a \(initechBudget)-token daily budget",
                           flags: ["--max-concurrency", "20", "--daily-tokens", "\(initechBudget)", "--soft-fraction", "0.8"]),
            ],
            modelLimits: [
                ["--provider", "openai", "--model", "gpt-4o-mini", "--rpm", "3000", "--tpm", "2000000"],
                ["--provider", "anthropic", "--model", "claude-haiku-4-5", "--rpm", "3000", "--tpm", "1500000"],
            ],
            // The provider: 150-400 ms to the first token, ~200 tokens/s, 1 % random 503s, and
            // limits per 10 s window above Sluice's configured ones (so Sluice, not the provider, paces).
            mock: MockProviderConfiguration(
                port: 0, rpm: 800, tpm: 800_000, rateLimitWindow: .seconds(10), ttft: .milliseconds(250),
                tokensPerSecond: 200, outputTokens: 60, faultRate: 0.01, faultStatus: 503),
            waves: [
                Wave(tenant: "acme", count: acmeJobs, perSecond: short ? 12 : 12, make: Self.chat),
                Wave(tenant: "globex", count: globexJobs, perSecond: 0, make: Self.summary),
                Wave(tenant: "initech", count: initechJobs, perSecond: 0, make: Self.tool),
            ],
            budgetTenant: "initech", raisedBudget: initechBudget * 20,
            processes: 2, concurrency: 64,
            deadline: short ? .seconds(180) : .seconds(420))
    }

    // MARK: Jobs

    /// A fault for about 7 % of jobs, as directives the mock provider obeys: some are retried
    /// until they succeed, some dead-letter.
    static func fault(_ rng: inout SplitMix64) -> String {
        switch rng.next() % 100 {
        case 0, 1: "status=400"                                    // invalid request: dead at once, no retry
        case 2: "context=true"                                     // context too long: dead at once
        case 3, 4: "status=500,fail_times=2"                       // two server errors, then success
        case 5: "status=429,retry_after_ms=1500,fail_times=1"      // one 429 with Retry-After, then success
        case 6: "disconnect_after=3,fail_times=1"                  // the stream drops once, then success
        default: ""
        }
    }

    static func words(_ count: Int, _ rng: inout SplitMix64) -> String {
        let vocabulary = ["order", "refund", "shipping", "account", "invoice", "delay", "customer", "report", "quarter",
                          "revenue", "summary", "policy", "ticket", "update", "meeting", "contract", "pricing", "renewal"]
        return (0..<count).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }.joined(separator: " ")
    }

    static func directives(_ tokens: Int, ttft: Int, _ rng: inout SplitMix64) -> String {
        "[[mock: " + (["tokens=\(tokens)", "ttft_ms=\(ttft)", fault(&rng)].filter { !$0.isEmpty }.joined(separator: ",")) + "]]"
    }

    /// acme: a support-chat turn, streamed; 40 % interactive, 60 % high.
    @Sendable static func chat(_ i: Int, _ rng: inout SplitMix64) -> JobSpec {
        let text = "Customer #\(i): " + words(20 + Int(rng.next() % 100), &rng) + " "
            + directives(30 + Int(rng.next() % 120), ttft: 150 + Int(rng.next() % 250), &rng)
        let request = #"{"messages":[{"role":"system","content":"You are a helpful support agent."},{"role":"user","content":"\#(text)"}]}"#
        return JobSpec(tenant: "acme", lane: rng.next() % 10 < 4 ? .interactive : .high, provider: "openai", model: "gpt-4o-mini",
                       request: JSONDocument(request), maxOutputTokens: 256, metadata: JSONDocument(#"{"conversation":\#(i)}"#),
                       idempotencyKey: "acme-turn-\(i)", stream: true)
    }

    /// globex: summarise a document, batch lane, Anthropic.
    @Sendable static func summary(_ i: Int, _ rng: inout SplitMix64) -> JobSpec {
        let text = "Summarise document \(i): " + words(150 + Int(rng.next() % 300), &rng) + " "
            + directives(100 + Int(rng.next() % 150), ttft: 300 + Int(rng.next() % 300), &rng)
        let request = #"{"system":"Summarise in five bullet points.","messages":[{"role":"user","content":"\#(text)"}]}"#
        return JobSpec(tenant: "globex", lane: .batch, provider: "anthropic", model: "claude-haiku-4-5",
                       request: JSONDocument(request), maxOutputTokens: 400, idempotencyKey: "globex-doc-\(i)", stream: true)
    }

    /// initech: an internal tool call, normal lane, either provider.
    @Sendable static func tool(_ i: Int, _ rng: inout SplitMix64) -> JobSpec {
        let text = "Ticket \(i): " + words(40 + Int(rng.next() % 80), &rng) + " "
            + directives(40 + Int(rng.next() % 100), ttft: 200 + Int(rng.next() % 200), &rng)
        let anthropic = rng.next() % 2 == 0
        let request = #"{"messages":[{"role":"user","content":"\#(text)"}]}"#
        return JobSpec(tenant: "initech", lane: .normal, provider: anthropic ? "anthropic" : "openai",
                       model: anthropic ? "claude-haiku-4-5" : "gpt-4o-mini", request: JSONDocument(request),
                       maxOutputTokens: 200, idempotencyKey: "initech-ticket-\(i)", stream: !anthropic)
    }
}

/// A small deterministic random number generator (SplitMix64), so the workload is the same every run.
struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
