public import Sluice
public import SluicePostgres
import SluiceSupport

/// One dependency `/readyz` checks: a name and a call that throws when it is unreachable.
public struct ReadinessCheck: Sendable {
    /// Shown in the `/readyz` body (`postgres`, `redis`).
    public let name: String
    let check: @Sendable () async throws -> Void

    public init(name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }

    /// PostgreSQL answers `SELECT 1` on `postgres` (give the probe a small pool of its own, so a
    /// busy worker pool never makes the process look unready).
    public static func postgres(_ postgres: PostgresClient) -> ReadinessCheck {
        let store = JobStore(postgres: postgres)
        return ReadinessCheck(name: "postgres") { try await store.ping() }
    }
}

/// What `/readyz` answers: ready when every check passed within the timeout and the worker is
/// not draining.
public struct Readiness: Sendable, Hashable {
    /// Whether the process should receive work / count as up.
    public var ready: Bool { problems.isEmpty }
    /// Check name (or `draining`) → what is wrong; empty when ready.
    public var problems: [String: String]
}

/// Runs the readiness checks concurrently, each bounded by a timeout.
public struct ReadinessProbe: Sendable {
    private let checks: [ReadinessCheck]
    private let draining: @Sendable () -> Bool
    private let timeout: Duration

    /// - Parameters:
    ///   - draining: whether the worker is draining (``Worker/isDraining``); a draining process is not ready.
    ///   - timeout: longest a check may take before it counts as failed. Default 2 s.
    public init(checks: [ReadinessCheck], draining: @escaping @Sendable () -> Bool, timeout: Duration = .seconds(2)) {
        self.checks = checks
        self.draining = draining
        self.timeout = timeout
    }

    /// Runs every check now.
    public func evaluate() async -> Readiness {
        var problems: [String: String] = [:]
        if draining() { problems["draining"] = "the worker is shutting down" }
        await withTaskGroup(of: (String, String?).self) { group in
            for check in checks {
                group.addTask { (check.name, await Self.run(check, timeout: timeout)) }
            }
            for await (name, problem) in group {
                if let problem { problems[name] = problem }
            }
        }
        return Readiness(problems: problems)
    }

    /// The check's failure (redacted), "timed out", or nil when it passed. A check that does not
    /// return in time is left to finish on its own (a blocking connect cannot be interrupted),
    /// so a hung dependency never hangs the probe.
    private static func run(_ check: ReadinessCheck, timeout: Duration) async -> String? {
        let once = Locked<CheckedContinuation<String?, Never>?>(nil)
        let timer = Locked<Task<Void, Never>?>(nil)
        return await withCheckedContinuation { continuation in
            once.withLock { $0 = continuation }
            @Sendable func finish(_ value: String?) {
                once.withLock { stored in
                    stored?.resume(returning: value)
                    stored = nil
                }
            }
            let work = Task {
                do {
                    try await check.check()
                    finish(nil)
                } catch {
                    finish(LogRedaction.redact("\(error)"))
                }
                timer.withLock { $0?.cancel() }
            }
            timer.withLock { timer in
                timer = Task {
                    do { try await Task.sleep(for: timeout) } catch { return }
                    finish("no answer within \(timeout)")
                    work.cancel()
                }
            }
        }
    }
}
