/// A response body: an `AsyncSequence` of byte chunks, as they arrive from the network.
///
/// **Single consumer.** Iterate it once, from one task. A mid-stream failure (connection cut,
/// body shorter than `Content-Length`, idle or total timeout, shutdown) is thrown from `next()`
/// as an ``HTTPError`` — the sequence never ends silently on error.
///
/// **Back-pressure.** At most about ``HTTPClient/Configuration/maxBufferedBytes`` (plus one
/// network read) are held unconsumed per transfer; beyond that the transfer is paused in libcurl
/// (`CURL_WRITEFUNC_PAUSE`) and resumed when the consumer has drained the buffer below half.
///
/// **Cancellation.** Cancelling the iterating task aborts the transfer and throws
/// ``HTTPError/Code/cancelled``. Dropping the last copy of the body (and of its iterators)
/// before the end aborts the transfer too, which closes or frees the connection.
public struct HTTPBody: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = HTTPError

    /// Aborts the transfer when the last copy of the body and its iterators go away.
    final class Owner: Sendable {
        let transfer: Transfer
        init(transfer: Transfer) { self.transfer = transfer }
        deinit { transfer.cancel("the response body was dropped before its end") }
    }

    let owner: Owner

    init(transfer: Transfer) { self.owner = Owner(transfer: transfer) }

    /// The body's iterator.
    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = [UInt8]
        public typealias Failure = HTTPError

        let owner: Owner

        /// The next chunk (never empty), or `nil` after the last one.
        public mutating func next() async throws(HTTPError) -> [UInt8]? {
            try await owner.transfer.nextChunk().get()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(HTTPError) -> [UInt8]? {
            try await owner.transfer.nextChunk().get()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(owner: owner) }

    /// Collects the whole body, failing with ``HTTPError/Code/bodyTooLarge`` (and aborting the
    /// transfer) as soon as more than `limit` bytes have arrived.
    public func collect(upTo limit: Int) async throws(HTTPError) -> [UInt8] {
        var result: [UInt8] = []
        var iterator = makeAsyncIterator()
        while let chunk = try await iterator.next() {
            if result.count + chunk.count > limit {
                owner.transfer.cancel("body larger than the \(limit)-byte limit")
                throw owner.transfer.error(.bodyTooLarge, "the response body exceeds \(limit) bytes")
            }
            result.append(contentsOf: chunk)
        }
        return result
    }

    /// Unconsumed bytes currently buffered for this body (for tests and metrics).
    public var bufferedBytes: Int { owner.transfer.bufferedBytes }
}
