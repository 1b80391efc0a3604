import Foundation

/// A failure of the demo itself (a step that could not run), with the reason to print.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs the `sluice` CLI as an operator would, showing each command before it runs.
struct SluiceCLI: Sendable {
    /// The `sluice` executable.
    var path: String
    /// Environment for every command (SLUICE_DATABASE_URL, SLUICE_REDIS_URL, SLUICE_CONFIG).
    var environment: [String: String]

    /// Runs `sluice arguments…` and returns its standard output; a non-zero exit is an error
    /// carrying the command's standard error.
    @discardableResult
    func run(_ arguments: [String], show: Bool = true) throws -> String {
        if show { print("  $ sluice " + arguments.joined(separator: " ")) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DemoError("sluice \(arguments.first ?? "") exited with status \(process.terminationStatus): "
                + (String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Starts `sluice worker arguments…` with its log (JSON lines) going to `logPath`. The
    /// worker tree gets SIGTERM if the demo itself dies (`setpriv --pdeathsig`), so nothing
    /// outlives it.
    func startWorker(_ arguments: [String], logPath: String) throws -> Process {
        print("  $ sluice worker " + arguments.joined(separator: " "))
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw DemoError("cannot write \(logPath)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--pdeathsig", "TERM", "--", path, "worker"] + arguments
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return process
    }

    /// SIGTERM (the graceful drain), then SIGKILL after `grace`; waits for the exit.
    static func stop(_ process: Process, grace: Duration = .seconds(20)) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
