import Foundation
import Synchronization
public import Testing

/// What one test (or one suite) owns: clients, connections, child processes, temporary
/// databases and files. Whoever creates such a thing registers its teardown with the current
/// scope, and the scope runs every teardown when it ends — whether the test returned, failed
/// or threw — last registered first. Test bodies therefore never end with hand-written
/// `close()`/`shutdown()` calls.
///
/// A scope is entered with the ``TestScopeTrait`` (`@Suite(.testScope)`, `@Test(.testScope)`),
/// with a trait built on it (a temporary database, a migrated database, a Redis key prefix), or
/// locally with ``withTestScope(_:)``.
public final class TestScope: Sendable {
    /// The innermost scope of the running task (nil outside every scope).
    @TaskLocal public static var current: TestScope?

    private struct Teardown {
        let label: String
        let run: @Sendable () async -> Void
    }

    private let teardowns = Mutex<[Teardown]>([])

    public init() {}

    /// Registers `teardown` to run when this scope ends. `label` names it in failure messages.
    public func onExit(_ label: String, _ teardown: @escaping @Sendable () async -> Void) {
        teardowns.withLock { $0.append(Teardown(label: label, run: teardown)) }
    }

    /// The current scope, or an error telling the test author to add a scope trait.
    public static func required(for what: String) throws -> TestScope {
        guard let current else { throw MissingTestScope(what: what) }
        return current
    }

    /// Runs every registered teardown, last registered first, in a task of its own: a test
    /// that was cancelled (time limit, failed sibling) still gets everything torn down.
    func end() async {
        await Task {
            while let next = teardowns.withLock({ $0.popLast() }) {
                await next.run()
            }
        }.value
    }
}

/// Thrown when a fixture that must be owned by a scope is created outside of one.
public struct MissingTestScope: Error, CustomStringConvertible {
    public let what: String

    public init(what: String) { self.what = what }

    public var description: String {
        "\(what) needs a test scope that owns it: add `.testScope` (or a trait built on it) to the test or suite, or use withTestScope { }"
    }
}

/// Runs `body` in a new ``TestScope`` and tears down everything registered in it afterwards,
/// also when `body` throws.
public func withTestScope<R>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: () async throws -> R
) async throws -> R {
    let scope = TestScope()
    let result: Result<R, any Error>
    do {
        result = .success(try await TestScope.$current.withValue(scope) { try await body() })
    } catch {
        result = .failure(error)
    }
    await scope.end()
    return try result.get()
}

/// A trait giving each test (or each case of a parameterised test) a ``TestScope`` of its own.
/// On a suite it applies to every test in it.
public struct TestScopeTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public init() {}

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTestScope { try await function() }
    }
}

extension TestTrait where Self == TestScopeTrait {
    /// Tears down what the test registered in ``TestScope/current`` when it ends.
    public static var testScope: Self { TestScopeTrait() }
}

extension SuiteTrait where Self == TestScopeTrait {
    /// Gives every test of the suite its own ``TestScope``.
    public static var testScope: Self { TestScopeTrait() }
}

extension TestScope {
    /// Creates an empty directory under the system's temporary directory, removed with its
    /// contents when the scope ends.
    public func temporaryDirectory(_ prefix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        onExit("temporary directory \(path)") { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
