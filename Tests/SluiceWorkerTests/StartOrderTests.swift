import Foundation
import Sluice
@testable import SluiceWorker
import SluiceTestSupport
import Testing

/// The order in which the worker gives a claim's jobs their tasks (`Worker.startOrder`), and the
/// load governor's bounds. Tasks start in the order they are created, so a quiet tenant's job
/// claimed beside hundreds of a backlog's must not wait for their starts.
@Suite("Worker: start order of a claim, load governor", .workerDatabase)
struct StartOrderTests {
    /// A claim with a backlogged tenant's jobs, a quiet tenant's one job and an interactive job
    /// (claimed from the real store): interactive first, then the tenant with the fewest jobs in
    /// the claim, then the backlog in claim order.
    @Test func interactiveThenLightTenantsThenTheBacklog() async throws {
        let h = try WorkerHarness.current
        _ = try await h.client.enqueue(batch: (0..<30).map { echo("busy", "b \($0)") })
        try await h.client.store.updateTenant("busy", [.maxConcurrency(1000)])
        _ = try await h.client.enqueue(batch: (0..<2).map { echo("pair", "p \($0)") })
        try await h.client.store.updateTenant("pair", [.maxConcurrency(1000)])
        _ = try await h.client.enqueue(echo("quiet", "q"))
        _ = try await h.client.enqueue(echo("busy", "urgent", lane: .interactive))
        let claimed = try await h.client.store.claim(.init(
            worker: "w", limit: 100, lanes: Lane.allCases, tenants: nil, lease: .seconds(60),
            starvationAfter: .seconds(60), reserved: 0, tenantWindow: 256))
        #expect(claimed.count == 34)
        let ordered = Worker.startOrder(claimed)
        #expect(Set(ordered.map(\.id)) == Set(claimed.map(\.id)))
        #expect(ordered.first?.lane == .interactive)
        #expect(ordered.dropFirst().first?.tenant == "quiet")
        #expect(ordered.dropFirst(2).prefix(2).map(\.tenant) == ["pair", "pair"])
        #expect(ordered.dropFirst(4).allSatisfy { $0.tenant == "busy" && $0.lane == .normal })
        // The backlog keeps its claim order.
        let busy = claimed.filter { $0.tenant == "busy" && $0.lane == .normal }.map(\.id)
        #expect(Array(ordered.dropFirst(4).map(\.id)) == busy)
        // One tenant, one lane: unchanged.
        let single = claimed.filter { $0.tenant == "busy" && $0.lane == .normal }
        #expect(Worker.startOrder(single).map(\.id) == busy)
    }

    /// Off by default: no limit below the ordinary slots; the bounds are kept when it is on.
    @Test func governorIsOffByDefaultAndKeepsItsBounds() async throws {
        #expect(WorkerConfiguration().schedulingLagTarget == nil)
        let off = LoadGovernor(.init(lagTarget: nil, maximum: 486, minimum: 64))
        await off.run(ordinaryRunning: { 486 }, onChange: { _, _ in })  // returns at once when off
        #expect(off.limit == 486)
        let odd = LoadGovernor(.init(lagTarget: .milliseconds(2), maximum: 10, minimum: 50))
        #expect(odd.limit == 10)
        #expect(odd.configuration.minimum == 10)
        var bad = WorkerConfiguration()
        bad.schedulingLagTarget = .zero
        #expect(throws: WorkerError.self) { try bad.validate() }
    }
}
