import Foundation
public import Logging
public import Sluice
public import SluiceHTTP
import SluiceSupport
import SluiceJSON

/// A client for OpenAI Chat Completions and compatible servers.
///
/// `POST {baseURL}/chat/completions` with `Authorization: Bearer <key>` (keys round-robin),
/// optional `OpenAI-Organization` / `OpenAI-Project`, `traceparent`, and configured headers.
/// The job's body is sent with `model` and `stream` set; streams also get
/// `stream_options.include_usage = true` (usage arrives in a final `choices: []` chunk and the
/// stream must end with `data: [DONE]`), and `maxOutputTokens` fills
/// ``ProvidersConfiguration/Provider/maxTokensField`` when the body has neither `max_tokens`
/// nor `max_completion_tokens`. Usage is normalised (`inputTokens = prompt_tokens −
/// cached_tokens`).
public struct OpenAIProvider: LLMProvider {
    public let name: String
    let configuration: ProvidersConfiguration.Provider
    let engine: HTTPProviderEngine
    let keys: KeyRing

    /// - Parameters:
    ///   - configuration: the provider's entry (kind `openai`).
    ///   - httpClient: the process's shared client.
    ///   - priceTable: for `costUSD`; nil = no cost.
    public init(configuration: ProvidersConfiguration.Provider, httpClient: HTTPClient, priceTable: PriceTable?, logger: Logger) {
        self.name = configuration.name
        self.configuration = configuration
        self.keys = KeyRing(configuration.apiKeys, ids: configuration.apiKeyIDs)
        self.engine = HTTPProviderEngine(
            name: configuration.name, kind: .openai, client: httpClient, priceTable: priceTable,
            redactor: SecretRedactor(secrets: configuration.apiKeys.map(\.revealed)),
            timeouts: configuration.timeouts, logger: logger
        )
    }

    public func call(_ call: ProviderCall) async throws -> ProviderResult {
        let request = try makeRequest(call)
        return try await engine.perform(
            request, call: call, accumulator: OpenAIStreamAccumulator.self,
            parseResponse: OpenAIStreamAccumulator.parseResponse,
            rateLimits: { headers in ResponseHeaderParsing.openAIRateLimits { headers[$0] } }
        )
    }

    public func contextWindow(model: String) -> Int? {
        ProviderCatalog.contextWindow(provider: name, kind: ProviderKind.openai.rawValue, model: model, overrides: configuration.contextWindows)
    }

    private var maxTokensFieldDiffers: Bool { configuration.maxTokensField != "max_tokens" }

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
            // A route job's request may be Anthropic-shaped; its output limit goes in the field
            // this provider wants.
            body = try RequestTranslation.adapt(body, to: .openai, route: route)
            if maxTokensFieldDiffers, let tokens = body["max_tokens"], body["max_completion_tokens"] == nil {
                body["max_tokens"] = nil
                body[configuration.maxTokensField] = tokens
            }
        }
        body["model"] = .string(call.model)
        body["stream"] = .bool(call.stream)
        if call.stream {
            var options = body["stream_options"]?.objectValue ?? [:]
            options["include_usage"] = .bool(true)
            body["stream_options"] = .object(options)
        } else {
            body["stream_options"] = nil
        }
        if let maxTokens = call.maxOutputTokens, body["max_tokens"] == nil, body["max_completion_tokens"] == nil {
            body[configuration.maxTokensField] = .number(Double(maxTokens))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: call.stream ? "text/event-stream" : "application/json")
        if let key = try apiKey(for: call) { headers.add(name: "Authorization", value: "Bearer \(key.revealed)") }
        if let organization = configuration.organization { headers.add(name: "OpenAI-Organization", value: organization) }
        if let project = configuration.project { headers.add(name: "OpenAI-Project", value: project) }
        if let traceparent = call.traceparent { headers.add(name: "traceparent", value: traceparent) }
        headers.add(name: "X-Client-Request-Id", value: call.jobID.lowercasedText)
        for (header, value) in configuration.headers.sorted(by: { $0.key < $1.key }) {
            headers.add(name: header, value: value)
        }
        return HTTPRequest(
            method: "POST", url: configuration.baseURL + "/chat/completions", headers: headers,
            body: JSONValue.object(body).serialized(), timeouts: engine.httpTimeouts(stream: call.stream)
        )
    }
}
