import SluiceSupport

/// Why a running attempt is being aborted from outside.
enum AbortReason: Sendable, Equatable {
    /// A submitter asked to cancel: the job ends `cancelled`.
    case cancelRequested
    /// The lease was lost (rescued by another worker): drop the attempt silently.
    case leaseLost
    /// Graceful shutdown passed its grace period: put the job back without using an attempt.
    case shutdown
    /// The attempt ran past the job's timeout: it fails with error class `timeout`.
    case timeout
}

/// The handle the worker keeps on each running attempt to abort it.
///
/// The provider call runs in one task that ``abort(_:)`` cancels, so a running attempt costs one
/// task; the worker's deadline sweep (not a timer per job) aborts attempts past their timeout.
final class JobControl: Sendable {
    private struct State {
        var reason: AbortReason?
        var cancel: (@Sendable () -> Void)?
        var deadline: ContinuousClock.Instant?
    }
    private let state = Locked(State())
    private let timeout: Duration

    /// - Parameter timeout: how long the call may run, counted from ``run(_:)``.
    init(timeout: Duration) {
        self.timeout = timeout
    }

    /// When the attempt times out (nil until its call starts).
    var deadline: ContinuousClock.Instant? { state.withLock { $0.deadline } }

    /// The first abort reason given, if any.
    var reason: AbortReason? { state.withLock { $0.reason } }

    /// Aborts the attempt (the first reason wins) by cancelling its call.
    func abort(_ reason: AbortReason) {
        let cancel: (@Sendable () -> Void)? = state.withLock { state in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.cancel = nil }
            return state.cancel
        }
        cancel?()
    }

    /// Runs `operation` in a task that ``abort(_:)`` (or cancelling the caller) cancels, and
    /// returns its result. An attempt aborted before it starts runs cancelled from the outset.
    func run<T: Sendable>(_ operation: @escaping @Sendable () async -> T) async -> T {
        let task = Task { await operation() }
        let cancelNow = state.withLock { state -> Bool in
            state.deadline = .now + timeout
            if state.reason != nil { return true }
            state.cancel = { task.cancel() }
            return false
        }
        if cancelNow { task.cancel() }
        let value = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        state.withLock { $0.cancel = nil }
        return value
    }
}
