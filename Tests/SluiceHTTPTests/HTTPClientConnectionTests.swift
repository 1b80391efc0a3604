import Foundation
import SluiceHTTP
import SluiceTestScope
import Testing

@Suite("HTTPClient connections and headers", .testScope)
struct HTTPClientConnectionTests {
    @Test("sequential requests reuse one connection")
    func sequentialRequestsReuseConnections() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            for i in 0..<50 {
                let response = try await client.execute(Request(method: "POST", url: "\(base)/echo", body: Array("\(i)".utf8)))
                #expect(try await response.body.collect(upTo: 100) == Array("\(i)".utf8))
            }
            try await waitUntil { client.finishedTransfers == 50 }
            #expect(client.finishedTransfers == 50)
            #expect(client.connectionsOpened >= 1)
            #expect(client.connectionsOpened <= 2)
        }
    }

    @Test("PUT with a body and HEAD without one")
    func otherMethods() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let put = try await client.execute(Request(method: "PUT", url: "\(base)/echo", body: Array("abc".utf8)))
            #expect(put.headers["x-echo-method"] == "PUT")
            #expect(try await put.body.collect(upTo: 10) == Array("abc".utf8))
            let head = try await client.execute(Request(method: "HEAD", url: "\(base)/hello"))
            #expect(head.status == 200)
            #expect(try await head.body.collect(upTo: 10).isEmpty)
        }
    }

    @Test("HTTPHeaders: ordered, duplicate-preserving, case-insensitive")
    func headerLookup() {
        var headers: HTTPHeaders = ["Content-Type": "application/json", "X-Rate": "1"]
        headers.add(name: "x-rate", value: "2")
        #expect(headers["content-type"] == "application/json")
        #expect(headers["CONTENT-TYPE"] == "application/json")
        #expect(headers["x-RATE"] == "1")
        #expect(headers.values("X-RATE") == ["1", "2"])
        #expect(headers["missing"] == nil)
        #expect(headers.map(\.name) == ["Content-Type", "X-Rate", "x-rate"])
        headers.replaceOrAdd(name: "X-rate", value: "3")
        #expect(headers.values("x-rate") == ["3"])
        let secret: HTTPHeaders = ["Authorization": "Bearer sk-123"]
        #expect(!secret.description.contains("sk-123"))
    }
}
