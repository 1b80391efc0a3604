import Foundation
public import Logging
public import Sluice
public import SluiceHTTP
import SluiceSupport
import SluiceJSON

/// A client for Anthropic Messages.
///
/// `POST {baseURL}/v1/messages` with `x-api-key` (keys round-robin), `anthropic-version`
/// (default `2023-06-01`), `traceparent` and configured headers. The job's body is sent with
/// `model` and `stream` set, and `max_tokens` (required by the API) from `maxOutputTokens`
/// when the body has none. Streams must end with `message_stop`; an `error` event after the
/// 200 fails with the class of its type (`overloaded_error` → `overloaded`, …). Usage maps one
/// to one (`input_tokens` excludes cache reads and writes).
public struct AnthropicProvider: LLMProvider {
    public let name: String
    let configuration: ProvidersConfiguration.Provider
    let engine: HTTPProviderEngine
    let keys: KeyRing

    /// - Parameters:
    ///   - configuration: the provider's entry (kind `anthropic`).
    ///   - httpClient: the process's shared client.
    ///   - priceTable: for `costUSD`; nil = no cost.
    public init(configuration: ProvidersConfiguration.Provider, httpClient: HTTPClient, priceTable: PriceTable?, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.keys = KeyRing(configuration.apiKeys, ids: configuration.apiKeyIDs)
        self.engine = HTTPProviderEngine(
            name: configuration.name, kind: .anthropic, client: httpClient, priceTable: priceTable,
            redactor: SecretRedactor(secrets: configuration.apiKeys.map(\.revealed)),
            timeouts: configuration.timeouts, logger: logger
        )
    }

    public func call(_ call: ProviderCall) async throws -> ProviderResult {
        let request = try makeRequest(call)
        return try await engine.perform(
            request, call: call, accumulator: AnthropicStreamAccumulator.self,
            parseResponse: AnthropicStreamAccumulator.parseResponse,
            rateLimits: { headers in ResponseHeaderParsing.anthropicRateLimits { headers[$0] } }
        )
    }

    /// `max_tokens` of a route job that sets no output limit (Anthropic requires one): the
    /// output tokens admission reserves for such a job.
    static let routeDefaultMaxTokens = 4096

    public func contextWindow(model: String) -> Int? {
        ProviderCatalog.contextWindow(provider: name, kind: ProviderKind.anthropic.rawValue, model: model, overrides: configuration.contextWindows)
    }

    /// The key admission chose for `call` (a key pool), else the next one round-robin.
    func apiKey(for call: ProviderCall) throws(ProviderFailure) -> Redacted? {
        guard let id = call.keyID else { return keys.next() }
        guard let key = keys.key(id: id) else {
            throw ProviderFailure(.internal, "provider \(name) has no API key with id \(id) on this worker (its keys: \(keys.ids.joined(separator: ", "))); "
                                  + "configure api_keys with that id or remove the key's limits (sluice limits show)")
        }
        return key
    }

    /// The HTTP request for `call`.
    func makeRequest(_ call: ProviderCall) throws(ProviderFailure) -> HTTPRequest {
        var body = try RequestBody.object(call.request)
        if let route = call.route {
            // A route job's request may be OpenAI-shaped; it need not set an output limit.
            body = try RequestTranslation.adapt(body, to: .anthropic, route: route)
            if body["max_tokens"] == nil { body["max_tokens"] = .number(Double(call.maxOutputTokens ?? Self.routeDefaultMaxTokens)) }
        }
        body["model"] = .string(call.model)
        body["stream"] = .bool(call.stream)
        if body["max_tokens"] == nil {
            guard let maxTokens = call.maxOutputTokens else {
                throw ProviderFailure(.invalidRequest, "Anthropic requires max_tokens: set it in the request or the job's max output tokens")
            }
            body["max_tokens"] = .number(Double(maxTokens))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: call.stream ? "text/event-stream" : "application/json")
        if let key = try apiKey(for: call) { headers.add(name: "x-api-key", value: key.revealed) }
        headers.add(name: "anthropic-version", value: configuration.anthropicVersion)
        if let traceparent = call.traceparent { headers.add(name: "traceparent", value: traceparent) }
        for (header, value) in configuration.headers.sorted(by: { $0.key < $1.key }) {
            headers.add(name: header, value: value)
        }
        return HTTPRequest(
            method: "POST", url: configuration.baseURL + "/v1/messages", headers: headers,
            body: JSONValue.object(body).serialized(), timeouts: engine.httpTimeouts(stream: call.stream)
        )
    }
}
