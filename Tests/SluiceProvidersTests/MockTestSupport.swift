#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import SluiceMockProvider
import Testing

/// A raw HTTP/1.1 exchange with the mock over a plain socket, so tests see the exact bytes,
/// including a missing chunked terminator or a connection that stays silent.
struct MockRawResponse: Sendable {
    var status: Int
    /// Header names lowercased.
    var headers: [String: String]
    /// The body, de-chunked.
    var body: String
    /// Whether the body ended properly (chunked terminator or full Content-Length).
    var completeBody: Bool
    /// Whether reading stopped because nothing arrived within the read timeout.
    var timedOut: Bool

    /// Server-sent events of the body: (event name or nil, data).
    var events: [(event: String?, data: String)] {
        body.components(separatedBy: "\n\n").compactMap { block in
            guard !block.isEmpty else { return nil }
            var name: String?
            var data: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))) }
            }
            return (name, data.joined(separator: "\n"))
        }
    }

    /// `data:` payloads parsed as JSON objects (nil where the payload is not a JSON object).
    var jsonEvents: [[String: any Sendable]?] {
        events.map { MockJSONObject.parse($0.data) }
    }

    var json: [String: any Sendable]? { MockJSONObject.parse(body) }
}

enum MockJSONObject {
    static func parse(_ text: String) -> [String: any Sendable]? {
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object.mapValues { sendable($0) }
    }

    private static func sendable(_ value: Any) -> any Sendable {
        switch value {
        case let dict as [String: Any]: return dict.mapValues { sendable($0) }
        case let array as [Any]: return array.map { sendable($0) }
        case let string as String: return string
        case let bool as Bool where type(of: value) == Bool.self: return bool
        case let number as NSNumber: return number.intValue
        default: return MockJSONNull()
        }
    }
}

/// JSON `null` in parsed test bodies (distinct from a missing key, which reads as Swift nil).
struct MockJSONNull: Sendable, Equatable {}

extension Dictionary where Key == String, Value == any Sendable {
    subscript(path path: String...) -> (any Sendable)? {
        var current: (any Sendable)? = self
        for component in path {
            if let index = Int(component), let array = current as? [any Sendable] {
                current = index < array.count ? array[index] : nil
            } else {
                current = (current as? [String: any Sendable])?[component]
            }
        }
        return current
    }
}

enum MockClient {
    /// Sends one request (with `Connection: close`) and reads until the server closes, the
    /// read timeout passes without data, or an error. Runs on its own thread so blocking reads
    /// never occupy Swift's cooperative threads (the in-process server needs them).
    static func send(
        port: Int, method: String = "POST", path: String, headers: [String: String] = [:], body: String? = nil,
        readTimeout: Duration = .seconds(10)
    ) async throws -> MockRawResponse {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try exchange(port: port, method: method, path: path, headers: headers, body: body, readTimeout: readTimeout)
                })
            }
            thread.start()
        }
    }

    static func openAI(
        port: Int, body: String, mock: String? = nil, key: String = "sk-test", readTimeout: Duration = .seconds(10)
    ) async throws -> MockRawResponse {
        var headers = ["Authorization": "Bearer \(key)", "Content-Type": "application/json"]
        if let mock { headers["x-mock"] = mock }
        return try await send(port: port, path: "/v1/chat/completions", headers: headers, body: body, readTimeout: readTimeout)
    }

    static func anthropic(
        port: Int, body: String, mock: String? = nil, key: String = "sk-ant-test", version: Bool = true,
        readTimeout: Duration = .seconds(10)
    ) async throws -> MockRawResponse {
        var headers = ["x-api-key": key, "Content-Type": "application/json"]
        if version { headers["anthropic-version"] = "2023-06-01" }
        if let mock { headers["x-mock"] = mock }
        return try await send(port: port, path: "/v1/messages", headers: headers, body: body, readTimeout: readTimeout)
    }

    struct SocketError: Error, CustomStringConvertible {
        var description: String
    }

    private static func exchange(
        port: Int, method: String, path: String, headers: [String: String], body: String?, readTimeout: Duration
    ) throws -> MockRawResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket() failed: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SocketError(description: "connect() failed: \(errno)") }
        let millis = readTimeout.components.seconds * 1000 + readTimeout.components.attoseconds / 1_000_000_000_000_000
        var timeout = timeval(tv_sec: Int(millis / 1000), tv_usec: Int((millis % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        var bytes = Array(request.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketError(description: "send() failed: \(errno)") }
            offset += n
        }

        var received: [UInt8] = []
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                received += buffer[0..<n]
            } else if n == 0 {
                break
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                timedOut = true
                break
            } else if errno == EINTR {
                continue
            } else {
                break  // reset by peer: keep what arrived
            }
        }
        bytes = received
        return try parse(bytes, timedOut: timedOut)
    }

    private static func parse(_ bytes: [UInt8], timedOut: Bool) throws -> MockRawResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headEnd = bytes.firstRange(of: separator) else {
            throw SocketError(description: "no complete response head in \(bytes.count) bytes")
        }
        let head = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw SocketError(description: "bad status line")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var rest = Array(bytes[headEnd.upperBound...])
        var body: [UInt8] = []
        var complete = false
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while let lineEnd = rest.firstRange(of: Array("\r\n".utf8)) {
                let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self)
                guard let size = Int(sizeText, radix: 16) else { break }
                let start = lineEnd.upperBound
                if size == 0 {
                    complete = rest.count >= start + 2
                    break
                }
                guard rest.count >= start + size + 2 else {
                    body += rest[start..<min(rest.count, start + size)]
                    break
                }
                body += rest[start..<start + size]
                rest = Array(rest[(start + size + 2)...])
            }
        } else if let length = headers["content-length"].flatMap(Int.init) {
            body = Array(rest.prefix(length))
            complete = rest.count >= length
        } else {
            body = rest
            complete = true
        }
        return MockRawResponse(
            status: status, headers: headers, body: String(decoding: body, as: UTF8.self), completeBody: complete, timedOut: timedOut
        )
    }
}

/// Runs `body` against a fresh in-process mock on a free port, then stops it.
func withMock<T>(
    _ configuration: MockProviderConfiguration = .init(port: 0),
    _ body: (RunningMockProvider) async throws -> T
) async throws -> T {
    var logger = Logger(label: "mock-test")
    logger.logLevel = .warning
    var configuration = configuration
    configuration.port = 0
    let mock = try await MockProviderServer.start(configuration: configuration, logger: logger)
    do {
        let result = try await body(mock)
        await mock.stop()
        return result
    } catch {
        await mock.stop()
        throw error
    }
}

/// A JSON string literal for embedding user text in request bodies.
func mockQuoted(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
}
