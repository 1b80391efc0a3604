import Foundation
import SluiceHTTP
import SluiceTestScope
import Testing

@Suite("HTTPClient streaming", .testScope)
struct HTTPClientStreamingTests {
    @Test("a streamed response arrives as several chunks, spread over time, before the response ends")
    func streamedChunksArriveIncrementally() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let started = ContinuousClock.now
            let response = try await client.execute(Request(url: "\(base)/stream?n=5&delay=150&id=s"))
            var arrivals: [(Duration, String)] = []
            for try await chunk in response.body {
                arrivals.append((ContinuousClock.now - started, String(decoding: chunk, as: UTF8.self)))
            }
            let text = arrivals.map(\.1).joined()
            #expect(text == "s:0\ns:1\ns:2\ns:3\ns:4\n")
            // One network chunk per server write: at least 4 separate deliveries, and the
            // first one long before the last (the server spends 600 ms between them).
            #expect(arrivals.count >= 4)
            if let first = arrivals.first, let last = arrivals.last {
                #expect(last.0 - first.0 >= .milliseconds(400))
                #expect(first.1.hasPrefix("s:0"))
            }
        }
    }

    @Test("1,000 concurrent streaming transfers all complete with their own content")
    func thousandConcurrentStreams() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        let response = try await client.execute(Request(url: "\(base)/stream?n=4&delay=100&id=\(i)"))
                        var text = ""
                        for try await chunk in response.body { text += String(decoding: chunk, as: UTF8.self) }
                        return (i, text)
                    }
                }
                var results: [Int: String] = [:]
                for try await (i, text) in group { results[i] = text }
                return results
            }
            #expect(results.count == 1000)
            for i in 0..<1000 {
                #expect(results[i] == "\(i):0\n\(i):1\n\(i):2\n\(i):3\n")
            }
        }
        #expect(client.activeTransfers == 0)
    }

    @Test("back-pressure: a 50 MB body read slowly keeps buffered bytes bounded and completes")
    func backPressureBoundsBuffering() async throws {
        let maxBuffered = 256 * 1024
        let client = makeClient { $0.maxBufferedBytes = maxBuffered }
        try await TestServer.with(client: client) { base in
            let response = try await client.execute(Request(url: "\(base)/big?mb=50"))
            #expect(response.headers["content-length"] == "\(50 << 20)")
            var total = 0
            var checksum: UInt64 = 0
            var chunks = 0
            for try await chunk in response.body {
                for (offset, byte) in chunk.enumerated() where (total + offset) % 4096 == 0 {
                    checksum &+= UInt64(byte)
                    #expect(byte == UInt8((total + offset) % 65536 % 251))
                }
                total += chunk.count
                chunks += 1
                // A slow consumer for the first few megabytes: the server is far faster.
                if total < 4 << 20 && chunks % 8 == 0 { try await Task.sleep(for: .milliseconds(5)) }
                #expect(client.bufferedBytes <= maxBuffered + 64 * 1024)
            }
            #expect(total == 50 << 20)
            _ = checksum
            // The limit plus at most one network read.
            #expect(client.peakBufferedBytes <= maxBuffered + 64 * 1024)
            #expect(client.peakBufferedBytes >= maxBuffered / 2, "the slow consumer should have filled the buffer")
        }
    }

    @Test("a connection cut mid-body (chunked) throws .transport from the body iterator")
    func cutChunkedStreamThrowsTransport() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let response = try await client.execute(Request(url: "\(base)/cut"))
            #expect(response.status == 200)
            var received = ""
            let error = await #expect(throws: HTTPError.self) {
                for try await chunk in response.body { received += String(decoding: chunk, as: UTF8.self) }
            }
            #expect(error?.code == .transport)
            #expect(received.hasPrefix("part 1\n"))
        }
    }

    @Test("a body shorter than its Content-Length throws .transport")
    func shortContentLengthThrowsTransport() async throws {
        let client = makeClient()
        let listener = try RawListener(backlog: 4)
        listener.serveOnce(response: Array("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 100))
        let response = try await client.execute(Request(url: "http://127.0.0.1:\(listener.port)/short"))
        #expect(response.status == 200)
        var received = 0
        let error = await #expect(throws: HTTPError.self) {
            for try await chunk in response.body { received += chunk.count }
        }
        #expect(error?.code == .transport)
        #expect(received == 100)
    }

    @Test("collect(upTo:) returns bodies within the limit and throws .bodyTooLarge beyond it")
    func collectLimit() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let exact = try await client.execute(Request(url: "\(base)/hello")).body.collect(upTo: 5)
            #expect(exact == Array("hello".utf8))
            let big = try await client.execute(Request(url: "\(base)/big?mb=2"))
            let error = await #expect(throws: HTTPError.self) { try await big.body.collect(upTo: 1 << 20) }
            #expect(error?.code == .bodyTooLarge)
        }
        try await waitUntil { client.activeTransfers == 0 }
        #expect(client.activeTransfers == 0)
    }
}

/// Polls `condition` every 10 ms for up to `timeout`.
func waitUntil(timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
}
