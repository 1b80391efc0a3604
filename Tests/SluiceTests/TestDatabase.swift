import Sluice
import SluiceTestSupport

typealias TestDatabase = MigratedDatabase

func echoSpec(_ tenant: String = "acme", _ text: String = "hello", lane: Lane = .normal, key: String? = nil) -> JobSpec {
    JobSpec(tenant: tenant, lane: lane, provider: "echo", model: "echo", request: chat(text), idempotencyKey: key)
}
