import SluiceSupport

/// The state of one request shared between the Swift tasks (``HTTPClient/execute(_:)`` and the
/// body iterator) and the event-loop thread. Everything mutable sits in one small lock; the
/// continuations are resumed outside it.
final class Transfer: Sendable {
    /// What the write callback should do with a chunk.
    enum Offer {
        case accepted
        case pause
        case abort
    }

    struct State {
        /// `execute` waiting for the response head.
        var head: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>?
        var headDelivered = false
        /// Received, unconsumed body chunks (`chunks[chunkHead...]`).
        var chunks: [[UInt8]] = []
        var chunkHead = 0
        var bufferedBytes = 0
        /// The body iterator waiting for a chunk.
        var reader: CheckedContinuation<Result<[UInt8]?, HTTPError>, Never>?
        /// Set once: `.success` after the last chunk, `.failure` on error/cancel/shutdown.
        var end: Result<Void, HTTPError>?
        /// The write callback returned `CURL_WRITEFUNC_PAUSE` and no un-pause was sent yet.
        var paused = false
        var unpauseRequested = false
    }

    let id: UInt64
    let request: HTTPRequest
    let loop: LoopShared
    let state = Locked(State())

    init(id: UInt64, request: HTTPRequest, loop: LoopShared) {
        self.id = id
        self.request = request
        self.loop = loop
    }

    func error(_ code: HTTPError.Code, _ message: String, curlCode: Int? = nil) -> HTTPError {
        HTTPError(code: code, message: message, method: request.method, url: request.redactedURL, curlCode: curlCode)
    }

    // MARK: Swift side

    /// Registers `execute`'s continuation and hands the transfer to the loop.
    func start(_ continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>) {
        let early: HTTPError? = state.withLock { state in
            if case .failure(let error) = state.end { return error }
            state.head = continuation
            return nil
        }
        if let early {
            continuation.resume(returning: .failure(early))
            return
        }
        if !loop.send(.add(self)) {
            fail(error(.shutdown, "the HTTP client has been shut down"), notifyLoop: false)
        }
    }

    /// Aborts the transfer from the Swift side (task cancelled, body dropped): fails any waiter
    /// at once and asks the loop to remove the easy handle.
    func cancel(_ message: String) {
        fail(error(.cancelled, message), notifyLoop: true)
    }

    /// Ends the transfer with `error`. From the Swift side (`notifyLoop`: cancel, body dropped)
    /// the buffered chunks are discarded; from the loop (transport error, timeout, shutdown) they
    /// stay readable and the error is thrown after the last of them.
    private func fail(_ error: HTTPError, notifyLoop: Bool) {
        let discard = notifyLoop
        let (head, reader, wasRunning, freed) = state.withLock { state -> (CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>?, CheckedContinuation<Result<[UInt8]?, HTTPError>, Never>?, Bool, Int) in
            guard state.end == nil else {
                // Already ended: only release what the consumer will never read (body dropped
                // after a complete transfer), so the buffered-bytes metric stays exact.
                let freed = state.bufferedBytes
                state.chunks = []
                state.chunkHead = 0
                state.bufferedBytes = 0
                return (nil, nil, false, freed)
            }
            state.end = .failure(error)
            let head = state.head, reader = state.reader
            state.head = nil
            state.reader = nil
            guard discard else { return (head, reader, true, 0) }
            let freed = state.bufferedBytes
            state.chunks = []
            state.chunkHead = 0
            state.bufferedBytes = 0
            return (head, reader, true, freed)
        }
        if freed > 0 { loop.metrics.addBuffered(-freed) }
        head?.resume(returning: .failure(error))
        reader?.resume(returning: .failure(error))
        if wasRunning && notifyLoop { _ = loop.send(.abort(id)) }
    }

    /// The next body chunk, `nil` at the end; called by the single body consumer.
    func nextChunk() async -> Result<[UInt8]?, HTTPError> {
        if Task.isCancelled {
            cancel("the task iterating the response body was cancelled")
            return .failure(error(.cancelled, "the task iterating the response body was cancelled"))
        }
        if let ready = takeChunk() { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8]?, HTTPError>, Never>) in
                let immediate: Result<[UInt8]?, HTTPError>? = state.withLock { state in
                    if let ready = Self.take(&state, maxBuffered: loop.configuration.maxBufferedBytes).result { return ready }
                    if state.reader != nil {
                        return .failure(error(.invalidRequest, "HTTPBody supports a single consumer"))
                    }
                    state.reader = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            cancel("the task iterating the response body was cancelled")
        }
    }

    private func takeChunk() -> Result<[UInt8]?, HTTPError>? {
        let (result, unpause, freed) = state.withLock { state in
            Self.take(&state, maxBuffered: loop.configuration.maxBufferedBytes)
        }
        if freed > 0 { loop.metrics.addBuffered(-freed) }
        if unpause { _ = loop.send(.unpause(id)) }
        return result
    }

    /// Pops a chunk or reports the end; `unpause` tells the caller to send an un-pause command.
    private static func take(_ state: inout State, maxBuffered: Int) -> (result: Result<[UInt8]?, HTTPError>?, unpause: Bool, freed: Int) {
        if state.chunkHead < state.chunks.count {
            let chunk = state.chunks[state.chunkHead]
            state.chunks[state.chunkHead] = []
            state.chunkHead += 1
            if state.chunkHead == state.chunks.count {
                state.chunks.removeAll(keepingCapacity: state.chunks.count <= 64)
                state.chunkHead = 0
            } else if state.chunkHead >= 64 && state.chunkHead * 2 >= state.chunks.count {
                state.chunks.removeFirst(state.chunkHead)
                state.chunkHead = 0
            }
            state.bufferedBytes -= chunk.count
            var unpause = false
            if state.paused && !state.unpauseRequested && state.bufferedBytes <= maxBuffered / 2 {
                state.unpauseRequested = true
                unpause = true
            }
            return (.success(chunk), unpause, chunk.count)
        }
        switch state.end {
        case .success?: return (.success(nil), false, 0)
        case .failure(let error)?: return (.failure(error), false, 0)
        case nil: return (nil, false, 0)
        }
    }

    // MARK: Loop side (event-loop thread only)

    /// Delivers the response head to `execute`. Returns `false` if the transfer was already aborted.
    @discardableResult
    func deliverHead(_ response: HTTPResponse) -> Bool {
        let head: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>? = state.withLock { state in
            guard state.end == nil, !state.headDelivered else { return nil }
            state.headDelivered = true
            defer { state.head = nil }
            return state.head
        }
        guard let head else { return false }
        head.resume(returning: .success(response))
        return true
    }

    /// Offers a body chunk from curl's write callback (the bytes are copied only if accepted).
    func offer(_ bytes: UnsafeRawBufferPointer) -> Offer {
        let maxBuffered = loop.configuration.maxBufferedBytes
        var chunk: [UInt8]?
        let (offer, reader): (Offer, CheckedContinuation<Result<[UInt8]?, HTTPError>, Never>?) = state.withLock { state in
            if state.end != nil { return (.abort, nil) }
            if state.bufferedBytes >= maxBuffered && state.reader == nil {
                state.paused = true
                state.unpauseRequested = false
                return (.pause, nil)
            }
            let copy = [UInt8](bytes)
            if let reader = state.reader {
                state.reader = nil
                chunk = copy
                return (.accepted, reader)
            }
            state.chunks.append(copy)
            state.bufferedBytes += copy.count
            return (.accepted, nil)
        }
        if let reader {
            reader.resume(returning: .success(chunk))
        } else if offer == .accepted {
            loop.metrics.addBuffered(bytes.count)
        }
        return offer
    }

    /// Ends the transfer from the loop (success, curl error, timeout, shutdown).
    func finish(_ result: Result<Void, HTTPError>) {
        switch result {
        case .success:
            let reader: CheckedContinuation<Result<[UInt8]?, HTTPError>, Never>? = state.withLock { state in
                guard state.end == nil else { return nil }
                state.end = .success(())
                defer { state.reader = nil }
                return state.reader
            }
            reader?.resume(returning: .success(nil))
        case .failure(let error):
            fail(error, notifyLoop: false)
        }
    }

    /// Called by the loop before `curl_easy_pause(CURLPAUSE_CONT)`.
    func willUnpause() {
        state.withLock { state in
            state.paused = false
            state.unpauseRequested = false
        }
    }

    /// Unconsumed bytes buffered for this transfer.
    var bufferedBytes: Int { state.withLock { $0.bufferedBytes } }
}
