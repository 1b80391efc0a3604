import Foundation
import Logging
import SluicePostgres

/// Wakes ``SluiceClient/wait(for:timeout:)`` callers when their job reaches a terminal state.
///
/// One LISTEN connection per client on channel `sluice_done` (the worker and `cancel` notify
/// it with the job ids, comma-separated, up to 200 per notification, after or in the
/// transaction that finishes the jobs). Waiters register interest *before* reading the job's
/// state, so a notification between the read and the wait is never missed; after a listener
/// reconnect every waiter re-reads its job, since notifications sent while disconnected are
/// lost. A waiter also re-reads its job after a while without a notification
/// (``SluiceClient/Configuration/waitRecheck``, backing off): the worker notifies after its
/// commit, and a process that dies between the two never sends it.
actor JobWaiter {
    static let channel = StoreNames.doneChannel

    private let postgres: PostgresClient
    private let logger: Logger
    private var listenTask: Task<Void, Never>?
    private var starting: Task<Void, any Error>?
    private var listening = false
    /// Per job: how many notifications arrived since interest was registered, and the parked waiters.
    private var versions: [UUID: Int] = [:]
    private var interest: [UUID: Int] = [:]
    private var parked: [UUID: [Int: CheckedContinuation<Void, Never>]] = [:]
    private var nextToken = 0

    init(postgres: PostgresClient, logger: Logger) {
        self.postgres = postgres
        self.logger = logger
    }

    /// Starts the listener if needed and returns once LISTEN is active, so a terminal
    /// transition committed after this returns is always delivered.
    func ensureListening() async throws {
        if listening { return }
        if let starting {
            return try await starting.value
        }
        let task = Task { try await self.startListener() }
        starting = task
        defer { starting = nil }
        try await task.value
    }

    private func startListener() async throws {
        let stream = try await postgres.startListening([JobWaiter.channel])
        listening = true
        listenTask = Task { [weak self] in
            for await event in stream {
                guard let self else { return }
                await self.handle(event)
            }
            await self?.listenerEnded()
        }
    }

    /// Registers interest in a job and returns its current notification count.
    func register(_ id: UUID) -> Int {
        interest[id, default: 0] += 1
        return versions[id, default: 0]
    }

    /// Drops interest registered with ``register(_:)``.
    func unregister(_ id: UUID) {
        let left = interest[id, default: 1] - 1
        if left <= 0 {
            interest[id] = nil
            versions[id] = nil
        } else {
            interest[id] = left
        }
    }

    /// Waits until a notification for `id` arrives after `version`, or until `deadline`.
    func waitForChange(_ id: UUID, after version: Int, until deadline: ContinuousClock.Instant) async {
        if versions[id, default: 0] > version { return }
        let token = nextToken
        nextToken += 1
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            await self?.wake(id, token: token)
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            parked[id, default: [:]][token] = continuation
        }
        timer.cancel()
    }

    private func wake(_ id: UUID, token: Int) {
        if let continuation = parked[id]?.removeValue(forKey: token) {
            continuation.resume()
        }
        if parked[id]?.isEmpty == true { parked[id] = nil }
    }

    private func wakeAll(_ id: UUID) {
        if let waiting = parked.removeValue(forKey: id) {
            for continuation in waiting.values { continuation.resume() }
        }
    }

    private func handle(_ event: PostgresListenEvent) {
        switch event {
        case .notification(let note):
            guard !interest.isEmpty else { return }
            for text in note.payload.split(separator: ",") {
                guard let id = UUID(uuidString: String(text)), interest[id] != nil else { continue }
                versions[id, default: 0] += 1
                wakeAll(id)
            }
        case .reconnected:
            // Notifications may have been lost: make every waiter re-read its job.
            for id in interest.keys {
                versions[id, default: 0] += 1
                wakeAll(id)
            }
        }
    }

    private func listenerEnded() {
        listening = false
        listenTask = nil
        for id in Array(parked.keys) { wakeAll(id) }
    }

    func shutdown() {
        listenTask?.cancel()
        listenTask = nil
        listening = false
        for id in Array(parked.keys) { wakeAll(id) }
    }
}
