import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SluiceSupport

/// Thrown inside a streaming body to drop the connection without a chunked terminator.
struct MockDisconnect: Error {}

/// Answers `POST /v1/chat/completions` and `POST /v1/messages`.
///
/// Order of checks (the first that applies answers): body size (413) → API key (401) →
/// `anthropic-version` (400) → body shape (400) → directives (400) → RPM/TPM (429) →
/// `status=` directive (subject to `fail_times`) → random fault → the answer.
struct MockCompletionResponder: Sendable {
    let state: MockProviderState
    let logger: Logger

    private var configuration: MockProviderConfiguration { state.configuration }

    func respond(format: MockWireFormat, request: Request, context: MockRequestContext) async -> Response {
        let requestID = MockIDs.make("req_")
        let renderer = format.renderer
        state.recordRequest()
        var headers = HTTPFields()
        headers[MockHeaders.xRequestID] = requestID
        headers[MockHeaders.requestID] = requestID

        func failure(_ status: Int, _ reason: MockErrorReason, extra: HTTPFields = [:]) -> Response {
            state.recordStatus(status)
            var fields = headers
            fields[.contentType] = "application/json"
            fields.append(contentsOf: extra)
            let body = renderer.errorBody(status: status, reason: reason, requestID: requestID)
            return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
        }

        // Body, auth and shape.
        let bodyBuffer: ByteBuffer
        do {
            bodyBuffer = try await request.body.collect(upTo: configuration.maxRequestBodyBytes)
        } catch {
            return failure(413, .invalidRequest("request body larger than \(configuration.maxRequestBodyBytes) bytes"))
        }
        let apiKey: String?
        switch format {
        case .openAI:
            apiKey = request.headers[.authorization].flatMap { value in
                value.hasPrefix("Bearer ") ? String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces) : nil
            }
        case .anthropic:
            apiKey = request.headers[MockHeaders.xAPIKey]
        }
        guard let apiKey, !apiKey.isEmpty else { return failure(401, .invalidAPIKey) }
        if !configuration.apiKeys.isEmpty && !configuration.apiKeys.contains(Redacted(apiKey)) {
            return failure(401, .invalidAPIKey)
        }
        if format == .anthropic && request.headers[MockHeaders.anthropicVersion] == nil {
            return failure(400, .invalidRequest("anthropic-version: header is required"))
        }
        let parsed: MockCompletionRequest
        let directives: MockDirectives
        let headerDirectives = request.headers[MockHeaders.xMock]
        do {
            parsed = try MockCompletionRequest.parse(Data(bodyBuffer.readableBytesView), format: format)
            directives = try MockDirectives.parse(header: headerDirectives, prompt: parsed.lastUserText)
        } catch let error as MockProviderError {
            return failure(400, .invalidRequest(error.message))
        } catch {
            return failure(400, .invalidRequest("invalid request"))
        }

        // Rate limits.
        let inputTokens = parsed.inputTokens
        let cost = inputTokens + (parsed.maxTokens ?? directives.tokens ?? configuration.outputTokens)
        let decision = state.rateLimiter.admit(apiKey: apiKey, model: parsed.model, cost: cost)
        MockHeaders.rateLimit(format, decision, into: &headers)
        if !decision.allowed {
            state.recordRateLimited()
            var extra = HTTPFields()
            let (seconds, atto) = decision.reset.components
            MockHeaders.retryAfter(milliseconds: max(1, Int(seconds) * 1000 + Int((atto + 999_999_999_999_999) / 1_000_000_000_000_000)), into: &extra)
            return failure(429, .rateLimited(tokens: decision.tokensExceeded), extra: extra)
        }

        // Injected failures.
        var effective = directives
        if let times = directives.failTimes, directives.hasFailure {
            let key = "\(format.rawValue)|\(headerDirectives ?? "")|\(parsed.lastUserText)"
            if state.nextAttempt(for: key) > times { effective = directives.withoutFailures }
        }
        if let status = effective.status {
            var extra = HTTPFields()
            if let ms = effective.retryAfterMilliseconds { MockHeaders.retryAfter(milliseconds: ms, into: &extra) }
            if let retry = effective.shouldRetry { extra[MockHeaders.shouldRetry] = retry ? "true" : "false" }
            let reason: MockErrorReason = status == 400 && effective.contextTooLong ? .contextTooLong(inputTokens: inputTokens) : .injected
            return failure(status, reason, extra: extra)
        }
        if configuration.faultRate > 0 && Double.random(in: 0..<1) < configuration.faultRate {
            return failure(configuration.faultStatus, .injected)
        }

        // The answer.
        state.recordInput(inputTokens)
        let completion = MockCompletion.make(format: format, request: parsed, directives: effective, defaultTokens: configuration.outputTokens)
        let pacing = MockPacing(
            ttft: effective.ttftMilliseconds.map { .milliseconds($0) } ?? configuration.ttft,
            tokensPerSecond: effective.tokensPerSecond ?? configuration.tokensPerSecond
        )
        if parsed.stream {
            return stream(completion, renderer: renderer, includeUsage: parsed.includeUsage, directives: effective,
                          pacing: pacing, headers: headers, requestID: requestID, channel: context.channel)
        }
        return await whole(completion, format: format, renderer: renderer, directives: effective, pacing: pacing,
                           headers: headers, requestID: requestID, channel: context.channel)
    }

    /// A non-streaming answer. Stream faults map to: `stall_after` → no answer until the client
    /// leaves or the server shuts down; `disconnect_after` → the connection closes without an
    /// answer; `truncate`/`malformed_after` → 200 with the JSON body cut in half; `error_after` →
    /// a 500 (OpenAI) / 529 (Anthropic) error.
    private func whole(
        _ completion: MockCompletion, format: MockWireFormat, renderer: any MockWireRenderer, directives: MockDirectives,
        pacing: MockPacing, headers: HTTPFields, requestID: String, channel: any Channel
    ) async -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        do {
            try await pacing.sleepWhole(tokens: completion.outputTokens)
        } catch {
            channel.close(promise: nil)
            return Response(status: .ok)
        }
        if directives.stallAfter != nil {
            await Self.waitForCloseOrShutdown(channel)
            return Response(status: .ok)
        }
        if directives.disconnectAfter != nil {
            try? await channel.close()
            return Response(status: .ok)
        }
        if directives.errorAfter != nil {
            let status = format == .openAI ? 500 : 529
            state.recordStatus(status)
            let body = renderer.errorBody(status: status, reason: .injected, requestID: requestID)
            return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        var body = renderer.body(for: completion)
        if directives.truncate || directives.malformedAfter != nil {
            body = String(body.utf8.prefix(body.utf8.count / 2))!
        }
        state.recordStatus(200)
        state.recordOutput(completion.outputTokens)
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// A streaming answer: preamble at once, then content chunks paced by `pacing`, with the
    /// stream faults applied after the configured number of content chunks (a count beyond the
    /// number of content chunks applies right after the last one).
    private func stream(
        _ completion: MockCompletion, renderer: any MockWireRenderer, includeUsage: Bool, directives: MockDirectives,
        pacing: MockPacing, headers: HTTPFields, requestID: String, channel: any Channel
    ) -> Response {
        var fields = headers
        fields[.contentType] = renderer.streamContentType
        fields[.cacheControl] = "no-cache"
        state.recordStatus(200)
        let events = renderer.streamEvents(for: completion, includeUsage: includeUsage)
        let state = self.state
        let contentCount = events.reduce(0) { $0 + ($1.tokens > 0 ? 1 : 0) }
        let body = ResponseBody { writer in
            state.streamStarted()
            var tokensSent = 0
            defer {
                state.streamEnded()
                state.recordOutput(tokensSent)
            }
            var pending = ByteBuffer()
            var sent = 0
            var faultsChecked = false
            var malformedSent = false
            var start = ContinuousClock.now
            for event in events {
                if event.kind == .terminal && directives.truncate { continue }
                // Faults fire before content chunk number N, or after the last content chunk.
                let atFaultPoint = event.tokens > 0 || (sent == contentCount && !faultsChecked)
                if atFaultPoint {
                    if sent == contentCount { faultsChecked = true }
                    func hit(_ n: Int?) -> Bool { n.map { min($0, contentCount) == sent } ?? false }
                    if hit(directives.stallAfter) {
                        if pending.readableBytes > 0 { try await writer.write(pending) }
                        await Self.waitForCloseOrShutdown(channel)
                        throw MockDisconnect()
                    }
                    if hit(directives.disconnectAfter) {
                        if pending.readableBytes > 0 { try await writer.write(pending) }
                        throw MockDisconnect()
                    }
                    if hit(directives.errorAfter) {
                        pending.writeString(renderer.streamErrorEvent(requestID: requestID))
                        try await writer.write(pending)
                        try await writer.finish(nil)
                        return
                    }
                    if hit(directives.malformedAfter) && !malformedSent {
                        malformedSent = true
                        pending.writeString(renderer.malformedEvent())
                    }
                }
                if event.tokens > 0 {
                    if sent == 0 {
                        if pacing.ttft > .zero {
                            if pending.readableBytes > 0 { try await writer.write(pending) }
                            pending.clear()
                            try await Task.sleep(for: pacing.ttft)
                        }
                        start = .now
                    } else if let tps = pacing.tokensPerSecond {
                        if pending.readableBytes > 0 { try await writer.write(pending) }
                        pending.clear()
                        try await Task.sleep(until: start + .seconds(Double(sent) / tps), tolerance: .milliseconds(2))
                    }
                    sent += 1
                    tokensSent += event.tokens
                }
                pending.writeString(event.text)
                if event.kind == .preamble { continue }
                if pacing.tokensPerSecond != nil || (pacing.ttft > .zero && sent <= 1) {
                    try await writer.write(pending)
                    pending.clear()
                }
            }
            if pending.readableBytes > 0 { try await writer.write(pending) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: fields, body: body)
    }

    /// Suspends until the client closes the connection, the server shuts down gracefully, or
    /// the task is cancelled; then makes sure the connection is closed.
    static func waitForCloseOrShutdown(_ channel: any Channel) async {
        MockConnectionHandler.armCloseOnInputClosed(channel)
        try? await withTaskCancellationOrGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            channel.close(promise: nil)
        }
        try? await channel.close()
    }
}

/// Time to first token and streaming pace for one request.
struct MockPacing: Sendable {
    var ttft: Duration
    var tokensPerSecond: Double?

    /// A non-streaming answer takes as long as streaming it would.
    func sleepWhole(tokens: Int) async throws {
        var total = ttft
        if let tps = tokensPerSecond, tokens > 1 { total += .seconds(Double(tokens - 1) / tps) }
        if total > .zero { try await Task.sleep(for: total) }
    }
}
