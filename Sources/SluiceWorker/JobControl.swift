import SluiceSupport

/// Why a running attempt is being aborted from outside.
enum AbortReason: Sendable, Equatable {
    /// A submitter asked to cancel: the job ends `cancelled`.
    case cancelRequested
    /// The lease was lost (rescued by another worker): drop the attempt silently.
    case leaseLost
    /// Graceful shutdown passed its grace period: put the job back without using an attempt.
    case shutdown
}

/// The handle the worker keeps on each running attempt to abort it.
final class JobControl: Sendable {
    private struct State {
        var reason: AbortReason?
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Locked(State())

    /// The first abort reason given, if any.
    var reason: AbortReason? { state.withLock { $0.reason } }

    /// Aborts the attempt (the first reason wins).
    func abort(_ reason: AbortReason) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.reason == nil { state.reason = reason }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns when the attempt is aborted or the calling task is cancelled.
    func waitForAbort() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.reason != nil || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
