import Hummingbird
import NIOCore

/// The request context of the mock's routes: the basic context plus the connection's channel,
/// which the disconnect and stall faults close directly.
struct MockRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The TCP connection the request arrived on.
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
