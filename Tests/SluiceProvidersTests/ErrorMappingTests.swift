import Sluice
import Testing
@testable import SluiceProviders

@Suite("Error mapping")
struct ErrorMappingTests {
    func body(_ json: String) -> ErrorMapping.ErrorBody { ErrorMapping.ErrorBody(body: Array(json.utf8)) }

    @Test(arguments: [
        (400, ErrorClass.invalidRequest), (401, .auth), (403, .auth), (404, .notFound), (408, .timeout),
        (409, .rateLimited), (429, .rateLimited), (500, .serverError), (502, .serverError), (503, .serverError),
        (529, .overloaded), (422, .invalidRequest),
    ])
    func statusClasses(_ status: Int, _ expected: ErrorClass) {
        #expect(ErrorMapping.errorClass(status: status, body: .init()) == expected)
    }

    @Test func openAIContextLength() {
        let openAI = body(#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#)
        #expect(openAI.code == "context_length_exceeded")
        #expect(ErrorMapping.errorClass(status: 400, body: openAI) == .contextLength)
        let byMessage = body(#"{"error":{"message":"maximum context length exceeded","type":"invalid_request_error","code":null}}"#)
        #expect(ErrorMapping.errorClass(status: 400, body: byMessage) == .contextLength)
    }

    @Test func anthropicContextLength() {
        let anthropic = body(#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#)
        #expect(anthropic.type == "invalid_request_error")
        #expect(ErrorMapping.errorClass(status: 400, body: anthropic) == .contextLength)
    }

    @Test func contentFilterCodes() {
        #expect(ErrorMapping.errorClass(status: 400, body: body(#"{"error":{"message":"x","code":"content_filter"}}"#)) == .contentFilter)
        #expect(ErrorMapping.errorClass(status: 400, body: body(#"{"error":{"message":"x","code":"content_policy_violation"}}"#)) == .contentFilter)
    }

    @Test func plainInvalidRequest() {
        #expect(ErrorMapping.errorClass(status: 400, body: body(#"{"error":{"message":"bad param","type":"invalid_request_error"}}"#)) == .invalidRequest)
        #expect(ErrorMapping.errorClass(status: 400, body: body("not json")) == .invalidRequest)
        #expect(body("not json").message == "not json")
    }

    @Test(arguments: [
        ("overloaded_error", ErrorClass.overloaded), ("rate_limit_error", .rateLimited), ("api_error", .serverError),
        ("authentication_error", .auth), ("permission_error", .auth), ("not_found_error", .notFound),
        ("invalid_request_error", .invalidRequest), ("timeout_error", .timeout), ("something_new", .serverError),
    ])
    func anthropicErrorTypes(_ type: String, _ expected: ErrorClass) {
        #expect(ErrorMapping.errorClass(anthropicType: type) == expected)
    }

    @Test func redactsKeysAndTruncates() {
        let key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
        let redactor = SecretRedactor(secrets: [key])
        let echoed = redactor.redact("Incorrect API key provided: \(key). You can find your API key at …")
        #expect(!echoed.contains(key))
        #expect(!echoed.contains("abcdefghijklmnop"))
        #expect(echoed.contains("<redacted>"))
        // Masked or other key-shaped tokens are removed too.
        let masked = SecretRedactor(secrets: []).redact("Incorrect API key provided: sk-abc12***********wxyz")
        #expect(!masked.contains("sk-abc12"))
        let bearer = SecretRedactor(secrets: []).redact("header was Authorization: Bearer abcdefghijkl123")
        #expect(!bearer.contains("abcdefghijkl123"))
        let long = redactor.redact(String(repeating: "a", count: 2000))
        #expect(long.count <= SecretRedactor.maxMessageLength + 1)
        // Ordinary text is untouched.
        #expect(redactor.redact("task-based risk-free") == "task-based risk-free")
    }
}
