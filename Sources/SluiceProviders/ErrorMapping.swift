import Foundation
public import Sluice
import SluiceJSON

/// Classifies provider error responses (HTTP status + body) into Sluice's ``ErrorClass``.
///
/// | status | class |
/// |---|---|
/// | 400 | `invalid_request`; `context_length` when the body says the context is too long; `content_filter` for OpenAI `content_filter` / `content_policy_violation` codes |
/// | 401, 403 | `auth` |
/// | 404 | `not_found` |
/// | 408 | `timeout` |
/// | 409, 429 | `rate_limited` |
/// | 529 | `overloaded` |
/// | other 5xx | `server_error` |
/// | other 4xx | `invalid_request` |
public enum ErrorMapping {
    /// The provider's error message and type/code, extracted from either wire format's error
    /// body (`{"error":{"message","type","code"}}` or `{"type":"error","error":{"type","message"}}`).
    public struct ErrorBody: Sendable, Hashable {
        public var message: String?
        public var type: String?
        public var code: String?

        public init(message: String? = nil, type: String? = nil, code: String? = nil) {
            self.message = message
            self.type = type
            self.code = code
        }

        /// Parses an error body; fields stay nil when the body is not JSON or has another shape.
        public init(body: [UInt8]) {
            guard let json = try? JSONValue.parse(body) else {
                let text = String(decoding: body.prefix(2048), as: UTF8.self).trimmingWhitespace()
                self.init(message: text.isEmpty ? nil : text)
                return
            }
            let error = json["error"]
            if let error, case .object = error {
                self.init(
                    message: error["message"]?.stringValue,
                    type: error["type"]?.stringValue,
                    code: error["code"]?.stringValue ?? error["code"]?.intValue.map(String.init)
                )
            } else {
                self.init(message: error?.stringValue ?? json["message"]?.stringValue, type: json["type"]?.stringValue)
            }
        }
    }

    /// The class of an HTTP error response.
    public static func errorClass(status: Int, body: ErrorBody) -> ErrorClass {
        let code = body.code?.lowercased() ?? ""
        let type = body.type?.lowercased() ?? ""
        let message = body.message?.lowercased() ?? ""
        switch status {
        case 400, 413, 422:
            if code == "context_length_exceeded" || type == "context_length_exceeded"
                || isContextLengthMessage(message) {
                return .contextLength
            }
            if code == "content_filter" || code == "content_policy_violation" || type == "content_policy_violation" {
                return .contentFilter
            }
            return .invalidRequest
        case 401, 403: return .auth
        case 404: return .notFound
        case 408: return .timeout
        case 409, 429: return .rateLimited
        case 529: return .overloaded
        case 500...599:
            return type == "overloaded_error" ? .overloaded : .serverError
        default:
            return .invalidRequest
        }
    }

    /// The class of an Anthropic `error` event (or error body type) that arrives without a
    /// meaningful HTTP status, e.g. mid-stream after a 200.
    public static func errorClass(anthropicType type: String?, message: String? = nil) -> ErrorClass {
        switch type ?? "" {
        case "overloaded_error": .overloaded
        case "rate_limit_error": .rateLimited
        case "api_error": .serverError
        case "timeout_error": .timeout
        case "authentication_error", "permission_error": .auth
        case "not_found_error": .notFound
        case "request_too_large": .invalidRequest
        case "invalid_request_error":
            isContextLengthMessage(message?.lowercased() ?? "") ? .contextLength : .invalidRequest
        default: .serverError
        }
    }

    /// The class of an OpenAI in-stream `{"error":{…}}` object (no HTTP status to go by).
    public static func errorClass(openAIStreamError body: ErrorBody) -> ErrorClass {
        let code = body.code?.lowercased() ?? ""
        let type = body.type?.lowercased() ?? ""
        if code == "rate_limit_exceeded" || type == "rate_limit_exceeded" || type == "rate_limit_error" { return .rateLimited }
        if code == "context_length_exceeded" { return .contextLength }
        if code == "content_filter" || code == "content_policy_violation" { return .contentFilter }
        if type == "invalid_request_error" { return .invalidRequest }
        if type == "overloaded_error" || code == "overloaded" { return .overloaded }
        return .serverError
    }

    static func isContextLengthMessage(_ lowercased: String) -> Bool {
        lowercased.contains("prompt is too long") || lowercased.contains("context length")
            || lowercased.contains("context_length_exceeded") || lowercased.contains("maximum context")
            || lowercased.contains("context window")
    }
}
