import CSluiceShims
import SluiceSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A request from a Swift task to the event-loop thread.
enum LoopCommand: Sendable {
    /// Start a transfer.
    case add(Transfer)
    /// Abort the transfer with this id (already failed on the Swift side).
    case abort(UInt64)
    /// The consumer drained the buffer: resume a paused transfer.
    case unpause(UInt64)
    /// Fail everything with `.shutdown` and stop the loop.
    case shutdown
}

/// Counters published by the loop thread and the body consumers (lock-free).
final class HTTPMetrics: Sendable {
    let activeTransfers = Atomic<Int>(0)
    let bufferedBytes = Atomic<Int>(0)
    let peakBufferedBytes = Atomic<Int>(0)
    let connectionsOpened = Atomic<Int>(0)
    let completedTransfers = Atomic<Int>(0)

    func addBuffered(_ delta: Int) {
        let now = bufferedBytes.add(delta, ordering: .relaxed).newValue
        if delta > 0 {
            var peak = peakBufferedBytes.load(ordering: .relaxed)
            while now > peak {
                let (exchanged, original) = peakBufferedBytes.compareExchange(expected: peak, desired: now, ordering: .relaxed)
                if exchanged { break }
                peak = original
            }
        }
    }
}

/// The part of the event loop that Swift tasks may touch: the command queue and the eventfd
/// that wakes the loop thread. Commands are coalesced: only the send that finds the queue empty
/// writes to the eventfd.
final class LoopShared: Sendable {
    struct Queue {
        var commands: [LoopCommand] = []
        var stopped = false
        var exited = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let configuration: HTTPClient.Configuration
    let wakeFD: Int32
    let queue = Locked(Queue())
    let metrics = HTTPMetrics()
    let nextID = Atomic<UInt64>(1)

    init(configuration: HTTPClient.Configuration) {
        self.configuration = configuration
        let fd = sluice_eventfd_create()
        precondition(fd >= 0, "eventfd failed: errno \(errno)")
        self.wakeFD = fd
    }

    deinit { close(wakeFD) }

    /// Queues a command for the loop thread; `false` once the loop stopped accepting work.
    @discardableResult
    func send(_ command: LoopCommand) -> Bool {
        let (accepted, wake): (Bool, Bool) = queue.withLock { queue in
            if queue.stopped {
                return (false, false)
            }
            if case .shutdown = command { queue.stopped = true }
            queue.commands.append(command)
            return (true, queue.commands.count == 1)
        }
        if wake { sluice_eventfd_signal(wakeFD) }
        return accepted
    }

    /// Takes all queued commands (loop thread).
    func drain() -> [LoopCommand] {
        queue.withLock { queue in
            let commands = queue.commands
            queue.commands = []
            return commands
        }
    }

    /// Called by the loop thread as its last act.
    func markExited() {
        let waiters = queue.withLock { queue in
            queue.exited = true
            queue.stopped = true
            defer { queue.exitWaiters = [] }
            return queue.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the loop thread has exited.
    func waitForExit() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = queue.withLock { queue in
                if queue.exited { return true }
                queue.exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
