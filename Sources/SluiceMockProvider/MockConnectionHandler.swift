import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// A per-connection channel handler (after HTTP decoding) for two things Hummingbird leaves to
/// the application:
/// - `Expect: 100-continue`: answers `100 Continue` at once, so clients (libcurl sends the
///   header for larger bodies) do not wait a second before sending the body;
/// - noticing a client that went away while a stream is stalled: Hummingbird allows remote
///   half-closure, so the client's FIN only surfaces as `ChannelEvent.inputClosed`. A stalled
///   stream arms the handler (``armCloseOnInputClosed(_:)``), which then closes the channel on
///   that event (or at once if it already happened), ending the stalled request.
final class MockConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var inputClosed = false
    private var closeOnInputClosed = false

    init() {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.headerFields[.expect]?.lowercased() == "100-continue" {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputClosed = true
            if closeOnInputClosed { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// From now on, a client FIN closes the connection (at once if it already arrived).
    /// Call on any thread; the work hops to the channel's event loop.
    static func armCloseOnInputClosed(_ channel: any Channel) {
        channel.eventLoop.execute {
            guard let handler = try? channel.pipeline.syncOperations.handler(type: MockConnectionHandler.self) else { return }
            handler.closeOnInputClosed = true
            if handler.inputClosed { channel.close(promise: nil) }
        }
    }
}
