import SluiceHTTP
import Testing
import SluiceTestScope

/// The error pattern (docs/ARCHITECTURE.md, "Errors"): codes compare by value, `description`
/// is redacted, `debugDescription` carries the detail.
@Suite("HTTPError", .testScope)
struct HTTPErrorTests {
    @Test func codesCompareByValue() {
        #expect(HTTPError.Code.connectFailed == .connectFailed)
        #expect(HTTPError.Code.connectFailed != .connectTimeout)
        #expect(Set([HTTPError.Code.tls, .tls, .transport]).count == 2)
        #expect("\(HTTPError.Code.idleTimeout)" == "idleTimeout")
    }

    @Test func secretsOfTheRequestAreInNeitherDescription() async throws {
        let client = makeClient()
        let reserved = try RawListener(backlog: nil)  // bound, not listening: connections are refused
        let request = Request(
            method: "POST", url: "http://user:pw-Secret@127.0.0.1:\(reserved.port)/v1/chat?key=query-Secret",
            headers: ["Authorization": "Bearer sk-header-Secret-123456", "X-Api-Key": "key-Secret"],
            body: Array(#"{"prompt":"body-Secret"}"#.utf8))
        let error = await #expect(throws: HTTPError.self) { _ = try await client.execute(request) }
        await client.shutdown()
        let thrown = try #require(error)
        #expect(thrown.code == .connectFailed)
        let description = String(describing: thrown)
        let debug = String(reflecting: thrown)
        #expect(description.hasPrefix("HTTPError.connectFailed: "))
        #expect(description.contains("(POST http://127.0.0.1:\(reserved.port)/v1/chat)"))
        // The detail: libcurl's result code (7, CURLE_COULDNT_CONNECT) and the fields by name.
        #expect(debug.hasPrefix("HTTPError(code: connectFailed, message: "))
        #expect(debug.contains(#"method: "POST""#))
        #expect(debug.contains(#"url: "http://127.0.0.1:\#(reserved.port)/v1/chat""#))
        #expect(debug.contains("curlCode: 7"))
        for text in [description, debug] {
            for secret in ["pw-Secret", "query-Secret", "header-Secret", "key-Secret", "body-Secret"] {
                #expect(!text.contains(secret), "\(secret) in \(text)")
            }
        }
    }
}
