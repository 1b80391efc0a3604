import CCurl
import CSluiceShims

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The loop-thread side of one transfer: the curl easy handle, its header list, the response
/// head being parsed and the deadlines. Created, used and destroyed on the event-loop thread only;
/// curl's callbacks reach it through `Unmanaged` userdata.
final class EasyContext {
    let transfer: Transfer
    unowned let loop: CurlEventLoop
    let easy: UnsafeMutableRawPointer
    var headerList: UnsafeMutablePointer<curl_slist>?
    /// The `CURLOPT_RESOLVE` list of a request with a pinned address.
    var resolveList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>

    // Response head as parsed from the header callback.
    var status = 0
    var statusLineVersion: String?
    var responseHeaders = HTTPHeaders()
    var headDelivered = false

    // Deadlines (monotonic ns; .max = none).
    let startedAt: UInt64
    let firstByteDeadline: UInt64
    let totalDeadline: UInt64
    let idleNanoseconds: UInt64?
    var gotBody = false
    var lastActivity: UInt64
    /// Set while curl holds the transfer paused because the consumer is slow (idle clock stopped).
    var pausedSince: UInt64?

    init(transfer: Transfer, loop: CurlEventLoop, easy: UnsafeMutableRawPointer, now: UInt64) {
        self.transfer = transfer
        self.loop = loop
        self.easy = easy
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let timeouts = transfer.request.timeouts
        self.startedAt = now
        self.lastActivity = now
        self.firstByteDeadline = timeouts.firstByte.map { now &+ $0.nanoseconds } ?? .max
        self.totalDeadline = timeouts.total.map { now &+ $0.nanoseconds } ?? .max
        self.idleNanoseconds = timeouts.idle?.nanoseconds
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        if let resolveList { curl_slist_free_all(resolveList) }
        errorBuffer.deallocate()
    }

    /// The curl error buffer's text, if any.
    var curlErrorText: String {
        let text = String(cString: errorBuffer)
        return text.trimmingTrailingNewlines
    }

    /// The earliest of this transfer's own deadlines (connect is curl's).
    var nextDeadline: UInt64 {
        var next = totalDeadline
        if !gotBody {
            next = min(next, firstByteDeadline)
        } else if let idle = idleNanoseconds, pausedSince == nil {
            next = min(next, lastActivity &+ idle)
        }
        return next
    }

    /// The timeout that has expired at `now`, if any.
    func expired(now: UInt64) -> HTTPError? {
        if now >= totalDeadline {
            return transfer.error(.totalTimeout, "the transfer did not complete within \(transfer.request.timeouts.total!)")
        }
        if !gotBody {
            if now >= firstByteDeadline {
                return transfer.error(.firstByteTimeout, "no response body byte within \(transfer.request.timeouts.firstByte!)")
            }
        } else if let idle = idleNanoseconds, pausedSince == nil, now >= lastActivity &+ idle {
            return transfer.error(.idleTimeout, "no data received for \(transfer.request.timeouts.idle!)")
        }
        return nil
    }

    // MARK: Header parsing

    func onHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        if headDelivered { return }  // trailers
        var line = Substring(decoding: bytes, as: UTF8.self)
        while let last = line.last, last.isNewline { line = line.dropLast() }
        if line.hasPrefix("HTTP/") {
            // A new status line: discards the headers of an interim (1xx) response.
            responseHeaders = HTTPHeaders()
            let parts = line.split(separator: " ", maxSplits: 2)
            statusLineVersion = parts.first.map { String($0.dropFirst(5)) }
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return
        }
        if line.isEmpty {
            // End of a head. Interim responses (100 Continue, 103 Early Hints) are skipped.
            if status >= 100 && status < 200 && status != 101 { return }
            deliverHead()
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingSpaces
        let value = line[line.index(after: colon)...].trimmingSpaces
        responseHeaders.add(name: String(name), value: String(value))
    }

    func deliverHead() {
        guard !headDelivered else { return }
        headDelivered = true
        var code = 0
        if sluice_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK, code > 0 {
            status = code
        }
        var versionCode = 0
        var version = statusLineVersion
        if sluice_curl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &versionCode) == CURLE_OK {
            switch versionCode {
            case CURL_HTTP_VERSION_1_0: version = "1.0"
            case CURL_HTTP_VERSION_1_1: version = "1.1"
            case CURL_HTTP_VERSION_2_0: version = "2"
            case CURL_HTTP_VERSION_3: version = "3"
            default: break
            }
        }
        let body = HTTPBody(transfer: transfer)
        transfer.deliverHead(HTTPResponse(status: status, headers: responseHeaders, httpVersion: version, body: body))
    }

    // MARK: Body

    /// Returns the value for curl's write callback.
    func onBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        if !headDelivered { deliverHead() }
        let now = monotonicNanoseconds()
        lastActivity = now
        if !gotBody {
            // The idle clock replaces the first-byte clock and may expire earlier.
            gotBody = true
            loop.noteDeadline(nextDeadline)
        }
        switch transfer.offer(bytes) {
        case .accepted:
            return bytes.count
        case .pause:
            pausedSince = now
            return Int(CURL_WRITEFUNC_PAUSE)
        case .abort:
            return 0
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }

    var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while let c = s.last, c.isNewline { s = s.dropLast() }
        return String(s)
    }
}

// MARK: curl callbacks (non-capturing, userdata is an unretained EasyContext)

let easyWriteCallback: sluice_curl_data_cb = { pointer, size, count, userdata in
    let context = Unmanaged<EasyContext>.fromOpaque(userdata!).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: pointer, count: size * count)
    return context.onBody(bytes)
}

let easyHeaderCallback: sluice_curl_data_cb = { pointer, size, count, userdata in
    let context = Unmanaged<EasyContext>.fromOpaque(userdata!).takeUnretainedValue()
    let n = size * count
    context.onHeaderLine(UnsafeRawBufferPointer(start: pointer, count: n))
    return n
}
