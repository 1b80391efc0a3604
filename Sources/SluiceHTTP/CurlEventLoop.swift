import CCurl
import CSluiceShims
import Logging

#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// The event loop: one `CURLM` multi handle driven by curl's socket and timer callbacks on
/// one dedicated thread that waits in `epoll_wait`. Every curl call happens on this thread.
/// Swift tasks reach it only through ``LoopShared`` (command queue + eventfd).
final class CurlEventLoop {
    let shared: LoopShared
    let logger: Logger
    let multi: UnsafeMutableRawPointer
    let epollFD: Int32
    /// Transfers in the multi handle, by id.
    var contexts: [UInt64: EasyContext] = [:]
    /// When curl wants `curl_multi_socket_action(CURL_SOCKET_TIMEOUT)` (monotonic ns).
    var curlTimerDeadline: UInt64?
    /// When the next per-transfer deadline (first byte, idle, total) may expire.
    var nextDeadlineScan: UInt64 = .max
    var stopping = false
    var userAgent: String

    /// Runs the loop on the current thread until shutdown.
    static func run(shared: LoopShared, logger: Logger) {
        let loop = CurlEventLoop(shared: shared, logger: logger)
        loop.run()
        loop.close()
        shared.markExited()
    }

    private init(shared: LoopShared, logger: Logger) {
        self.shared = shared
        self.logger = logger
        HTTPClient.globalInit
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        let epollFD = sluice_epoll_create()
        precondition(epollFD >= 0, "epoll_create1 failed: errno \(errno)")
        self.epollFD = epollFD
        let configuration = shared.configuration
        self.userAgent = configuration.userAgent

        let me = Unmanaged.passUnretained(self).toOpaque()
        sluice_curl_multi_setopt_socket_cb(multi, multiSocketCallback)
        sluice_curl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me)
        sluice_curl_multi_setopt_timer_cb(multi, multiTimerCallback)
        sluice_curl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me)
        sluice_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        sluice_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        sluice_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxTotalConnections)
        if let cache = configuration.maxCachedConnections {
            sluice_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, cache)
        }
        sluice_curl_multi_setopt_long(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, configuration.maxConcurrentStreamsPerConnection)

        precondition(sluice_epoll_watch(epollFD, shared.wakeFD, Int32(CURL_POLL_IN)) == 0, "epoll_ctl(eventfd) failed")
    }

    private func close() {
        for context in contexts.values {
            curl_multi_remove_handle(multi, context.easy)
            curl_easy_cleanup(context.easy)
        }
        contexts = [:]
        curl_multi_cleanup(multi)
        Glibc.close(epollFD)
    }

    // MARK: The loop

    private func run() {
        let capacity = 256
        let fds = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        let masks = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        defer {
            fds.deallocate()
            masks.deallocate()
        }
        var stillRunning: Int32 = 0
        while !stopping {
            let n = sluice_epoll_wait(epollFD, fds, masks, Int32(capacity), waitTimeoutMilliseconds())
            if n < 0 {
                if errno == EINTR { continue }
                logger.critical("epoll_wait failed", metadata: ["errno": "\(errno)"])
                failAll(HTTPError(code: .shutdown, message: "the HTTP event loop failed (epoll_wait errno \(errno))"))
                return
            }
            var woken = false
            for i in 0..<Int(n) {
                let fd = fds[i]
                if fd == shared.wakeFD {
                    woken = true
                } else {
                    curl_multi_socket_action(multi, fd, masks[i], &stillRunning)
                }
            }
            if woken {
                sluice_eventfd_drain(shared.wakeFD)
                processCommands()
                if stopping { break }
            }
            if let deadline = curlTimerDeadline, monotonicNanoseconds() >= deadline {
                curlTimerDeadline = nil
                curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &stillRunning)
            }
            readCompletions()
            let now = monotonicNanoseconds()
            if now >= nextDeadlineScan { scanDeadlines(now: now) }
        }
    }

    /// Milliseconds until the earliest of curl's timer and our deadlines; -1 to wait forever.
    private func waitTimeoutMilliseconds() -> Int32 {
        let next = min(curlTimerDeadline ?? .max, nextDeadlineScan)
        if next == .max { return -1 }
        let now = monotonicNanoseconds()
        if next <= now { return 0 }
        let ms = (next - now + 999_999) / 1_000_000
        return Int32(min(ms, 60_000))
    }

    // MARK: Commands

    private func processCommands() {
        for command in shared.drain() {
            switch command {
            case .add(let transfer):
                add(transfer)
            case .abort(let id):
                if let context = contexts[id] {
                    logger.trace("transfer aborted", metadata: ["id": "\(id)"])
                    remove(context)
                }
            case .unpause(let id):
                if let context = contexts[id] {
                    context.transfer.willUnpause()
                    if context.pausedSince != nil {
                        context.pausedSince = nil
                        context.lastActivity = monotonicNanoseconds()
                        noteDeadline(context.nextDeadline)
                    }
                    curl_easy_pause(context.easy, CURLPAUSE_CONT)
                }
            case .shutdown:
                stopping = true
                failAll(HTTPError(code: .shutdown, message: "the HTTP client was shut down"))
            }
        }
    }

    private func failAll(_ error: HTTPError) {
        for context in Array(contexts.values) {
            var e = error
            e.method = context.transfer.request.method
            e.url = context.transfer.request.redactedURL
            remove(context, result: .failure(e))
        }
    }

    private func add(_ transfer: Transfer) {
        guard let easy = curl_easy_init() else {
            transfer.finish(.failure(transfer.error(.invalidRequest, "curl_easy_init failed")))
            return
        }
        let context = EasyContext(transfer: transfer, loop: self, easy: easy, now: monotonicNanoseconds())
        if let error = configure(context) {
            curl_easy_cleanup(easy)
            transfer.finish(.failure(error))
            return
        }
        let rc = curl_multi_add_handle(multi, easy)
        guard rc == CURLM_OK else {
            curl_easy_cleanup(easy)
            transfer.finish(.failure(transfer.error(.invalidRequest, "curl_multi_add_handle failed: \(String(cString: curl_multi_strerror(rc)))")))
            return
        }
        contexts[transfer.id] = context
        shared.metrics.activeTransfers.add(1, ordering: .relaxed)
        noteDeadline(context.nextDeadline)
    }

    /// Sets the easy handle's options; returns an error for an unusable request.
    private func configure(_ context: EasyContext) -> HTTPError? {
        let easy = context.easy
        let request = context.transfer.request
        let configuration = shared.configuration
        var failed: CURLcode = CURLE_OK
        func check(_ rc: CURLcode) { if rc != CURLE_OK && failed == CURLE_OK { failed = rc } }

        let url = request.url
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            return context.transfer.error(.invalidRequest, "only http:// and https:// URLs are supported")
        }
        check(url.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_URL, $0) })
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS)))
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        check(sluice_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(context.errorBuffer)))
        let me = Unmanaged.passUnretained(context).toOpaque()
        check(sluice_curl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, me))
        check(sluice_curl_easy_setopt_data_cb(easy, CURLOPT_WRITEFUNCTION, easyWriteCallback))
        check(sluice_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me))
        check(sluice_curl_easy_setopt_data_cb(easy, CURLOPT_HEADERFUNCTION, easyHeaderCallback))
        check(sluice_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me))
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(configuration.httpVersion.curlValue)))
        if configuration.httpVersion != .http1_1 && url.hasPrefix("https://") {
            // Wait for an in-progress connection to learn whether it multiplexes (HTTP/2)
            // instead of opening one connection per concurrent request.
            check(sluice_curl_easy_setopt_long(easy, CURLOPT_PIPEWAIT, 1))
        }
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, configuration.verifyTLS ? 1 : 0))
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, configuration.verifyTLS ? 2 : 0))
        if let ca = configuration.caBundlePath {
            check(ca.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_CAINFO, $0) })
        }
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, configuration.tcpKeepAlive ? 1 : 0))
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1))
        check(sluice_curl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, configuration.receiveBufferSize))
        check(userAgent.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_USERAGENT, $0) })
        if let pin = request.pinnedAddress {
            guard pin.port > 0 && pin.port < 65536, !pin.host.isEmpty,
                  !pin.host.utf8.contains(where: { $0 <= 32 || $0 == UInt8(ascii: ":") || $0 >= 127 }),
                  !pin.address.isEmpty, pin.address.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "]") }) else {
                return context.transfer.error(.invalidRequest, "invalid pinned address")
            }
            let list = curl_slist_append(nil, pin.curlEntry)
            context.resolveList = list
            check(sluice_curl_easy_setopt_slist(easy, CURLOPT_RESOLVE, list))
        }
        if let connect = request.timeouts.connect {
            check(sluice_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, connect.milliseconds)))
        } else {
            check(sluice_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, 0))
        }

        // Method and body.
        let method = request.method
        guard !method.isEmpty, method.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return context.transfer.error(.invalidRequest, "invalid HTTP method")
        }
        if method == "HEAD" {
            check(sluice_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        } else if let body = request.body ?? (method == "POST" || method == "PUT" || method == "PATCH" ? [] : nil) {
            check(sluice_curl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            // COPYPOSTFIELDS copies the bytes, so the Swift array need not outlive this call
            // (an empty body still needs a non-NULL pointer).
            let bytes = body.isEmpty ? [0] : body
            check(bytes.withUnsafeBytes { raw in
                sluice_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress!))
            })
            if method != "POST" {
                check(method.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, $0) })
            }
        } else if method != "GET" {
            check(method.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, $0) })
        }

        // Headers. "Expect:" stops curl from waiting for 100-continue on large bodies.
        var list: UnsafeMutablePointer<curl_slist>? = nil
        var hasExpect = false
        for field in request.headers {
            guard field.name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }),
                  !field.value.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) else {
                if let list { curl_slist_free_all(list) }
                return context.transfer.error(.invalidRequest, "invalid header field '\(field.name.filter { $0.isASCII && !$0.isNewline })'")
            }
            if HTTPHeaders.equalNames(field.name, "Expect") { hasExpect = true }
            // "Name;" is curl's syntax for a header with an empty value.
            let line = field.value.isEmpty ? "\(field.name);" : "\(field.name): \(field.value)"
            list = curl_slist_append(list, line)
        }
        if !hasExpect { list = curl_slist_append(list, "Expect:") }
        context.headerList = list
        check(sluice_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list))

        if failed != CURLE_OK {
            return context.transfer.error(.invalidRequest, "could not configure the request: \(String(cString: curl_easy_strerror(failed)))", curlCode: Int(failed.rawValue))
        }
        return nil
    }

    /// Removes a transfer from the multi handle and frees it; reports `result` if given.
    private func remove(_ context: EasyContext, result: Result<Void, HTTPError>? = nil) {
        guard contexts.removeValue(forKey: context.transfer.id) != nil else { return }
        var connects = 0
        if sluice_curl_easy_getinfo_long(context.easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK {
            shared.metrics.connectionsOpened.add(connects, ordering: .relaxed)
        }
        curl_multi_remove_handle(multi, context.easy)
        curl_easy_cleanup(context.easy)
        shared.metrics.activeTransfers.subtract(1, ordering: .relaxed)
        shared.metrics.completedTransfers.add(1, ordering: .relaxed)
        if let result { context.transfer.finish(result) }
    }

    // MARK: Completions and deadlines

    private func readCompletions() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard sluice_curl_msg_is_done(message) != 0, let easy = sluice_curl_msg_easy(message) else { continue }
            let code = sluice_curl_msg_result(message)
            var raw: UnsafeMutableRawPointer?
            guard sluice_curl_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &raw) == CURLE_OK, let raw else { continue }
            let context = Unmanaged<EasyContext>.fromOpaque(raw).takeUnretainedValue()
            if code == CURLE_OK {
                if !context.headDelivered { context.deliverHead() }
                remove(context, result: .success(()))
            } else {
                let error = classify(code, context: context)
                logger.debug("HTTP transfer failed", metadata: ["error": "\(error)"])
                remove(context, result: .failure(error))
            }
        }
    }

    private func classify(_ code: CURLcode, context: EasyContext) -> HTTPError {
        let detail = context.curlErrorText
        let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        let kind: HTTPError.Code
        switch code {
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_NOT_BUILT_IN:
            kind = .invalidRequest
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            kind = .connectFailed
        case CURLE_OPERATION_TIMEDOUT:
            // The only curl timeout we set is CURLOPT_CONNECTTIMEOUT_MS; the others are ours.
            kind = .connectTimeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_USE_SSL_FAILED, CURLE_SSL_CLIENTCERT:
            kind = .tls
        case CURLE_ABORTED_BY_CALLBACK, CURLE_WRITE_ERROR:
            kind = .cancelled
        default:
            kind = .transport
        }
        return context.transfer.error(kind, text, curlCode: Int(code.rawValue))
    }

    /// Lowers the next scan time to `deadline`.
    func noteDeadline(_ deadline: UInt64) {
        if deadline < nextDeadlineScan { nextDeadlineScan = deadline }
    }

    private func scanDeadlines(now: UInt64) {
        var next = UInt64.max
        var expired: [(EasyContext, HTTPError)] = []
        for context in contexts.values {
            if let error = context.expired(now: now) {
                expired.append((context, error))
            } else {
                next = min(next, context.nextDeadline)
            }
        }
        nextDeadlineScan = next
        for (context, error) in expired {
            logger.debug("HTTP transfer timed out", metadata: ["error": "\(error)"])
            remove(context, result: .failure(error))
        }
    }

    // MARK: curl multi callbacks

    fileprivate func socketChanged(_ fd: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            _ = sluice_epoll_unwatch(epollFD, fd)
        } else if sluice_epoll_watch(epollFD, fd, what) != 0 {
            logger.error("epoll_ctl failed", metadata: ["fd": "\(fd)", "errno": "\(errno)"])
        }
    }

    fileprivate func timerChanged(_ timeoutMilliseconds: Int) {
        if timeoutMilliseconds < 0 {
            curlTimerDeadline = nil
        } else {
            curlTimerDeadline = monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) &* 1_000_000
        }
    }
}

private let multiSocketCallback: sluice_curl_socket_cb = { _, socket, what, userdata, _ in
    let loop = Unmanaged<CurlEventLoop>.fromOpaque(userdata!).takeUnretainedValue()
    loop.socketChanged(socket, what: what)
    return 0
}

private let multiTimerCallback: sluice_curl_timer_cb = { _, timeout, userdata in
    let loop = Unmanaged<CurlEventLoop>.fromOpaque(userdata!).takeUnretainedValue()
    loop.timerChanged(timeout)
    return 0
}
