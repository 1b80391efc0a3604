import Foundation
import SluiceHTTP
import SluiceTestScope
import Testing

typealias Request = SluiceHTTP.HTTPRequest

@Suite("HTTPClient basics", .testScope)
struct HTTPClientBasicTests {
    @Test("GET returns status, headers and body")
    func getRoundTrip() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let response = try await client.execute(Request(url: "\(base)/hello"))
            #expect(response.status == 200)
            #expect(response.httpVersion == "1.1")
            #expect(response.headers["content-length"] == "5")
            let body = try await response.body.collect(upTo: 1024)
            #expect(String(decoding: body, as: UTF8.self) == "hello")
        }
    }

    @Test("POST sends body and headers; response headers are looked up case-insensitively")
    func postRoundTrip() async throws {
        let client = makeClient()
        try await TestServer.with(client: client) { base in
            let payload = Array("{\"model\":\"m\",\"stream\":true}".utf8)
            let response = try await client.execute(Request(
                method: "POST", url: "\(base)/echo",
                headers: ["X-Test": "value-1", "Content-Type": "application/json"],
                body: payload
            ))
            #expect(response.status == 201)
            #expect(response.headers["x-echo-test"] == "value-1")
            #expect(response.headers["X-ECHO-TEST"] == "value-1")
            #expect(response.headers["X-Echo-Method"] == "POST")
            #expect(response.headers.values("X-Multi") == ["one", "two"])
            #expect(try await response.body.collect(upTo: 1 << 20) == payload)
        }
    }
}
