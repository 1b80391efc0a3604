import SluicePostgres

/// Group commit for single enqueues: while up to `maxInFlight` enqueue statements run, specs
/// that more callers submit meanwhile wait and then go to the database together, as one batch
/// in one transaction. Each commit costs a WAL flush, and concurrent single enqueues were bound
/// by those flushes; a group shares one.
///
/// Each caller gets the outcome it would have had alone. If the group's statement fails with an
/// error the database raised before committing (a spec is invalid, a tenant is paused, full or
/// over budget, not permitted), nothing was written, and the specs are enqueued again one by
/// one so that only the callers concerned get the error. Any other failure (a lost connection,
/// where the commit may or may not have happened) goes to every caller of the group unchanged,
/// as it would have alone: nothing is retried that might already be written.
actor EnqueueCoalescer {
    typealias Outcome = Result<EnqueuedJob, SluiceError>

    private let store: JobStore
    private let notifier: LaneNotifier
    private let maxInFlight: Int
    private let maxGroup: Int
    private var pending: [(spec: JobSpec, done: CheckedContinuation<Outcome, Never>)] = []
    private var inFlight = 0

    /// - Parameters:
    ///   - maxInFlight: enqueue statements of this coalescer at once (default 2: one runs while
    ///     the other waits for its commit).
    ///   - maxGroup: most specs in one group (default 1,000).
    init(store: JobStore, notifier: LaneNotifier, maxInFlight: Int = 2, maxGroup: Int = 1000) {
        self.store = store
        self.notifier = notifier
        self.maxInFlight = max(1, maxInFlight)
        self.maxGroup = max(1, maxGroup)
    }

    /// Enqueues `spec` with whatever other specs are waiting; returns when its group committed.
    func submit(_ spec: JobSpec) async -> Outcome {
        await withCheckedContinuation { continuation in
            pending.append((spec, continuation))
            startGroups()
        }
    }

    private func startGroups() {
        while inFlight < maxInFlight, !pending.isEmpty {
            let group = Array(pending.prefix(maxGroup))
            pending.removeFirst(group.count)
            inFlight += 1
            Task {
                let outcomes = await Self.enqueue(group.map(\.spec), store: store, notifier: notifier)
                for (item, outcome) in zip(group, outcomes) { item.done.resume(returning: outcome) }
                self.groupFinished()
            }
        }
    }

    private func groupFinished() {
        inFlight -= 1
        startGroups()
    }

    /// One statement for the group; on a rolled-back failure of a group of several, one per spec.
    static func enqueue(_ specs: [JobSpec], store: JobStore, notifier: LaneNotifier) async -> [Outcome] {
        do {
            return try await SluiceClient.enqueue(specs, store: store, notifier: notifier).map { .success($0) }
        } catch {
            guard specs.count > 1, error.code != .database else {
                return Array(repeating: .failure(error), count: specs.count)
            }
        }
        var outcomes: [Outcome] = []
        for spec in specs {
            do {
                outcomes.append(.success(try await SluiceClient.enqueue([spec], store: store, notifier: notifier)[0]))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }
}
