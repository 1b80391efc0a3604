import SluiceWorker
import Testing

/// `WorkerConfiguration.validate()` rejects each bad value with an error naming the field.
@Suite("Worker configuration")
struct WorkerConfigurationTests {
    struct Case: Sendable, CustomStringConvertible {
        var field: String
        var change: @Sendable (inout WorkerConfiguration) -> Void
        var description: String { field }
    }

    static let cases: [Case] = [
        Case(field: "concurrency") { $0.concurrency = 0 },
        Case(field: "concurrency") { $0.concurrency = 100_001 },
        Case(field: "lanes") { $0.lanes = [] },
        Case(field: "interactiveReserve") { $0.interactiveReserve = -1 },
        Case(field: "interactiveReserve") { $0.concurrency = 10; $0.interactiveReserve = 10 },
        Case(field: "maxClaimBatch") { $0.maxClaimBatch = 0 },
        Case(field: "claimTenantWindow") { $0.claimTenantWindow = 0 },
        Case(field: "completionBatch") { $0.completionBatch = 0 },
        Case(field: "completionInterval") { $0.completionInterval = .zero },
        Case(field: "lease") { $0.lease = .seconds(-1) },
        Case(field: "claimWindow") { $0.claimWindow = .zero },
        Case(field: "pollInterval") { $0.pollInterval = .zero },
        Case(field: "shutdownWriteTimeout") { $0.shutdownWriteTimeout = .seconds(-1) },
        Case(field: "heartbeatInterval") { $0.lease = .seconds(5); $0.heartbeatInterval = .seconds(5) },
    ]

    @Test func theDefaultsAreValid() throws {
        try WorkerConfiguration().validate()
    }

    @Test(arguments: cases)
    func aBadValueIsRejectedNamingItsField(_ c: Case) {
        var configuration = WorkerConfiguration()
        c.change(&configuration)
        do {
            try configuration.validate()
            Issue.record("\(c.field): accepted")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.hasPrefix(c.field), "\(error.message)")
        }
    }
}
