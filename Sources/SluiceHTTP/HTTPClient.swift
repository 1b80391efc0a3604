import CCurl
import CSluiceShims
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// An asynchronous HTTP/1.1 and HTTP/2 client over libcurl's multi interface.
///
/// One dedicated event-loop thread drives a single `CURLM` handle with curl's socket and timer
/// callbacks and `epoll`; transfers cost memory, not threads, so thousands can stream at once.
/// Swift tasks talk to the loop through a lock-protected command queue and an `eventfd`.
/// Connections are kept in curl's connection cache and reused; HTTP/2 is negotiated over TLS
/// (ALPN) and multiplexed.
///
/// The client is a `ServiceLifecycle.Service`: `run()` waits for graceful shutdown and then
/// stops the loop. It also works without `run()`; call ``shutdown()`` (or drop it) when done.
public final class HTTPClient: Service, Sendable {
    /// Client-wide settings.
    public struct Configuration: Sendable {
        /// Which HTTP versions to offer.
        public struct HTTPVersion: Hashable, Sendable {
            let curlValue: Int32
            /// HTTP/2 over TLS when the server offers it (ALPN), HTTP/1.1 otherwise and for `http://`.
            public static let http2OverTLS = HTTPVersion(curlValue: Int32(CURL_HTTP_VERSION_2TLS))
            /// Always HTTP/1.1.
            public static let http1_1 = HTTPVersion(curlValue: Int32(CURL_HTTP_VERSION_1_1))
        }

        /// Maximum connections per host (`CURLMOPT_MAX_HOST_CONNECTIONS`). Default 0 = unlimited:
        /// with HTTP/2 curl multiplexes concurrent requests over one connection anyway; with
        /// HTTP/1.1 every concurrent request needs its own connection, and a limit queues requests
        /// inside curl (their first-byte and total timeouts keep running while queued).
        public var maxConnectionsPerHost: Int = 0
        /// Maximum open connections in total (`CURLMOPT_MAX_TOTAL_CONNECTIONS`). Default 0 = unlimited.
        public var maxTotalConnections: Int = 0
        /// Idle connections kept for reuse (`CURLMOPT_MAXCONNECTS`). Default `nil`: curl's own
        /// default (4 × the number of transfers added, at least 4).
        public var maxCachedConnections: Int? = nil
        /// Concurrent HTTP/2 streams per connection (`CURLMOPT_MAX_CONCURRENT_STREAMS`). Default 100.
        public var maxConcurrentStreamsPerConnection: Int = 100
        /// Unconsumed body bytes buffered per transfer before the transfer is paused. Default 256 KiB.
        public var maxBufferedBytes: Int = 256 * 1024
        /// curl's receive buffer per transfer (`CURLOPT_BUFFERSIZE`), also the largest chunk
        /// delivered at once. Default 16 KiB.
        public var receiveBufferSize: Int = 16 * 1024
        /// The `User-Agent` header (a request header of the same name overrides it). Default `sluice`.
        public var userAgent: String = "sluice"
        /// Verify the server certificate and host name. Default `true`; turn off only in tests.
        public var verifyTLS: Bool = true
        /// A CA bundle file instead of the system store. Default `nil`.
        public var caBundlePath: String? = nil
        /// TCP keep-alive probes on idle connections. Default `true`.
        public var tcpKeepAlive: Bool = true
        /// HTTP version policy. Default ``HTTPVersion/http2OverTLS``.
        public var httpVersion: HTTPVersion = .http2OverTLS
        /// The event-loop thread's name. Default `sluice-http`.
        public var threadName: String = "sluice-http"

        /// The defaults documented on each property.
        public init() {}
    }

    /// `curl_global_init` exactly once per process (it is not thread safe itself).
    static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    let shared: LoopShared
    let logger: Logger

    /// Starts the client's event-loop thread.
    public init(configuration: Configuration = .init(), logger: Logger) {
        Self.globalInit
        self.logger = logger
        let shared = LoopShared(configuration: configuration)
        self.shared = shared
        let thread = Thread {
            CurlEventLoop.run(shared: shared, logger: logger)
        }
        thread.name = configuration.threadName
        thread.start()
    }

    deinit {
        shared.send(.shutdown)
    }

    /// Sends `request` and returns when the response head (status and headers) has arrived;
    /// the body then streams through ``HTTPResponse/body``.
    ///
    /// HTTP error statuses are ordinary responses. Throws ``HTTPError`` for failures before the
    /// head: `connectFailed`, `connectTimeout`, `firstByteTimeout`, `totalTimeout`, `tls`,
    /// `transport`, `invalidRequest`, `shutdown`, and `cancelled` if the calling task is
    /// cancelled (the transfer is aborted at once).
    public func execute(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let id = shared.nextID.add(1, ordering: .relaxed).newValue
        let transfer = Transfer(id: id, request: request, loop: shared)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, HTTPError>, Never>) in
                transfer.start(continuation)
            }
        } onCancel: {
            transfer.cancel("the task awaiting the response was cancelled")
        }
        return try result.get()
    }

    /// Fails every transfer in flight with ``HTTPError/Code/shutdown``, stops the event loop and
    /// waits for its thread to finish. Later requests fail with `.shutdown`. Idempotent.
    public func shutdown() async {
        shared.send(.shutdown)
        await shared.waitForExit()
    }

    /// Waits for graceful shutdown (or cancellation), then ``shutdown()``.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Transfers currently in the event loop (started and not yet finished or aborted).
    public var activeTransfers: Int { shared.metrics.activeTransfers.load(ordering: .relaxed) }

    /// Unconsumed response-body bytes buffered across all transfers.
    public var bufferedBytes: Int { shared.metrics.bufferedBytes.load(ordering: .relaxed) }

    /// The highest value ``bufferedBytes`` has reached.
    public var peakBufferedBytes: Int { shared.metrics.peakBufferedBytes.load(ordering: .relaxed) }

    /// Connections opened by finished transfers (`CURLINFO_NUM_CONNECTS` summed); a reused
    /// connection adds 0.
    public var connectionsOpened: Int { shared.metrics.connectionsOpened.load(ordering: .relaxed) }

    /// Transfers that have left the event loop (completed, failed or aborted).
    public var finishedTransfers: Int { shared.metrics.completedTransfers.load(ordering: .relaxed) }

    /// The libcurl version string (e.g. `libcurl/7.88.1 OpenSSL/3.0.x …`).
    public static var curlVersion: String { String(cString: curl_version()) }
}
