import Foundation
import Logging
import Sluice
import SluiceHTTP

/// The shared request/response machinery of the HTTP providers (OpenAI, Anthropic): sends the
/// request, maps transport errors and error statuses to ``ProviderFailure``, streams the body
/// through the wire format's ``StreamAccumulator`` measuring time to first token, and prices
/// the result. One attempt per call; never retries (the worker owns retries).
struct HTTPProviderEngine: Sendable {
    /// The largest non-streaming response body accepted.
    static let maxResponseBytes = 32 << 20
    /// The largest error body read (the rest is ignored).
    static let maxErrorBodyBytes = 256 << 10

    let name: String
    let kind: ProviderKind
    let client: HTTPClient
    let priceTable: PriceTable?
    let redactor: SecretRedactor
    let timeouts: ProvidersConfiguration.Timeouts
    let logger: Logger

    /// The HTTP timeouts of one call: streams get the first-byte and idle limits; a
    /// non-streaming call produces its first byte only when generation is done, so only the
    /// total limit applies.
    func httpTimeouts(stream: Bool) -> HTTPTimeouts {
        HTTPTimeouts(
            connect: timeouts.connect, firstByte: stream ? timeouts.firstByte : timeouts.total,
            idle: timeouts.idle, total: timeouts.total
        )
    }

    /// The cost of `usage`, priced by the requested model when the table knows it, else by
    /// the model the provider reported (one unknown-model count at most).
    func cost(model: String, reportedModel: String? = nil, usage: Usage?) -> Double? {
        guard let usage, let priceTable else { return nil }
        let providers = name == kind.rawValue ? [name] : [name, kind.rawValue]
        var chosen = model
        if let reportedModel, reportedModel != model, !providers.contains(where: { priceTable.price(provider: $0, model: model) != nil }) {
            chosen = reportedModel
        }
        return priceTable.cost(providers: providers, model: chosen, usage: usage)
    }

    /// Performs the call. `rateLimits` reads the wire format's rate-limit headers.
    func perform<Accumulator: StreamAccumulator>(
        _ request: HTTPRequest, call: ProviderCall, accumulator: Accumulator.Type,
        parseResponse: (_ body: [UInt8]) throws(ProviderFailure) -> Completion,
        rateLimits: (HTTPHeaders) -> RateLimitSnapshot?
    ) async throws(ProviderFailure) -> ProviderResult {
        let clock = ContinuousClock()
        let start = clock.now
        var snapshot: RateLimitSnapshot?
        var status: Int?
        do throws(ProviderFailure) {
            let response: HTTPResponse
            do {
                response = try await client.execute(request)
            } catch {
                throw transportFailure(error)
            }
            status = response.status
            snapshot = rateLimits(response.headers)
            guard (200..<300).contains(response.status) else {
                throw await errorFailure(response)
            }
            let completion: Completion
            var firstToken: Duration?
            let contentType = response.headers["content-type"]?.lowercased() ?? ""
            if call.stream && !contentType.contains("application/json") {
                var stream = Accumulator(configuration: .init())
                do {
                    for try await chunk in response.body {
                        if try stream.feed(chunk), firstToken == nil {
                            firstToken = clock.now - start
                        }
                    }
                } catch let failure as ProviderFailure {
                    throw failure
                } catch let error as HTTPError where !stream.isComplete {
                    let failure = transportFailure(error)
                    throw ProviderFailure(failure.errorClass, "stream cut: " + failure.message, usage: stream.reportedUsage)
                } catch let error as HTTPError {
                    // The terminal marker arrived; a problem reading what follows it is harmless.
                    logger.debug("ignoring an error after the end of a complete stream", metadata: ["error": "\(error.code)"])
                } catch {
                    throw ProviderFailure(.internal, "unexpected stream error: \(type(of: error))", usage: stream.reportedUsage)
                }
                completion = try stream.finish()
            } else {
                let body: [UInt8]
                do {
                    body = try await response.body.collect(upTo: Self.maxResponseBytes)
                } catch {
                    throw transportFailure(error)
                }
                completion = try parseResponse(body)
                firstToken = call.stream ? clock.now - start : nil
            }
            let model = completion.model ?? call.model
            return ProviderResult(
                text: completion.text, toolCalls: completion.toolCalls, finishReason: completion.finishReason,
                rawResponse: completion.rawResponse, usage: completion.usage,
                costUSD: cost(model: call.model, reportedModel: completion.model, usage: completion.usage),
                model: model, provider: name, latency: clock.now - start, timeToFirstToken: firstToken,
                httpStatus: response.status, rateLimits: snapshot
            )
        } catch {
            // ProviderFailure's fields are read-only here (it belongs to Sluice): build the
            // completed failure anew.
            let failure = ProviderFailure(
                error.errorClass != .cancelled && Task.isCancelled ? .cancelled : error.errorClass,
                redactor.redact(error.message), httpStatus: error.httpStatus ?? status,
                retryAfter: error.retryAfter, shouldRetry: error.shouldRetry, usage: error.usage,
                costUSD: error.costUSD ?? cost(model: call.model, usage: error.usage),
                rateLimits: error.rateLimits ?? snapshot
            )
            logger.debug("provider call failed", metadata: [
                "provider": "\(name)", "model": "\(call.model)", "job_id": "\(call.jobID)",
                "error_class": "\(failure.errorClass.rawValue)", "http_status": "\(failure.httpStatus.map(String.init) ?? "-")",
            ])
            throw failure
        }
    }

    /// A transport-level failure: timeouts → `timeout`, connect/TLS/transport → `connection`,
    /// cancellation → `cancelled`.
    func transportFailure(_ error: HTTPError) -> ProviderFailure {
        ProviderFailure(Self.errorClass(of: error), "\(error.code): \(error.message)")
    }

    /// The class of an ``HTTPError``.
    static func errorClass(of error: HTTPError) -> ErrorClass {
        switch error.code {
        case .connectTimeout, .firstByteTimeout, .idleTimeout, .totalTimeout: .timeout
        case .connectFailed, .transport, .tls: .connection
        case .cancelled: .cancelled
        case .bodyTooLarge: .serverError
        case .shutdown: .cancelled
        case .invalidRequest: .invalidRequest
        default: .connection
        }
    }

    /// The failure of an error status: classified from status and body, with the provider's
    /// retry verdict and delay.
    func errorFailure(_ response: HTTPResponse) async -> ProviderFailure {
        let body = (try? await response.body.collect(upTo: Self.maxErrorBodyBytes)) ?? []
        let errorBody = ErrorMapping.ErrorBody(body: body)
        var errorClass = ErrorMapping.errorClass(status: response.status, body: errorBody)
        if kind == .anthropic, response.status >= 500, errorBody.type == "overloaded_error" { errorClass = .overloaded }
        let headers = response.headers
        let lookup: (String) -> String? = { headers[$0] }
        var parts: [String] = []
        if let type = errorBody.type { parts.append(type) }
        if let code = errorBody.code, code != errorBody.type { parts.append(code) }
        let detail = errorBody.message ?? "HTTP \(response.status)"
        let message = parts.isEmpty ? detail : "\(parts.joined(separator: "/")): \(detail)"
        return ProviderFailure(
            errorClass, message, httpStatus: response.status,
            retryAfter: ResponseHeaderParsing.retryAfter(lookup),
            shouldRetry: ResponseHeaderParsing.shouldRetry(lookup)
        )
    }
}
