import Foundation

/// A program a test starts and talks to while it runs: lines to its stdin, waits for lines on its
/// stdout or stderr, signals, and its exit. Output is collected on background threads so the child
/// never blocks on a full pipe.
public final class RunningProcess {
    public let process = Process()
    private let stdinPipe = Pipe()
    private let lock = NSCondition()
    private var out = ""
    private var err = ""
    private var readers = 0

    public init(_ argv: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        if let environment { process.environment = environment }
        let o = Pipe(), e = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = o
        process.standardError = e
        try process.run()
        collect(o.fileHandleForReading, isStdout: true)
        collect(e.fileHandleForReading, isStdout: false)
    }

    public var pid: Int32 { process.processIdentifier }

    private func collect(_ handle: FileHandle, isStdout: Bool) {
        lock.lock()
        readers += 1
        lock.unlock()
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                lock.lock()
                if chunk.isEmpty {
                    readers -= 1
                    lock.broadcast()
                    lock.unlock()
                    return
                }
                let text = String(decoding: chunk, as: UTF8.self)
                if isStdout { out += text } else { err += text }
                lock.broadcast()
                lock.unlock()
            }
        }
    }

    public var stdout: String { lock.lock(); defer { lock.unlock() }; return out }
    public var stderr: String { lock.lock(); defer { lock.unlock() }; return err }

    /// Waits until stdout or stderr contains `text`; fails if the program exits or time runs out first.
    public func waitFor(_ text: String, inStderr: Bool = false, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !(inStderr ? err : out).contains(text) {
            let name = process.executableURL?.lastPathComponent ?? "program"
            if readers == 0 { throw TestSupportError("\(name) exited before printing \"\(text)\"; stderr: \(err)") }
            if Date() >= deadline { throw TestSupportError("\(name) did not print \"\(text)\" in \(Int(timeout)) s; stderr: \(err)") }
            lock.wait(until: min(deadline, Date().addingTimeInterval(0.2)))
        }
    }

    public func send(_ line: String) {
        stdinPipe.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    public func closeInput() { try? stdinPipe.fileHandleForWriting.close() }

    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the exit; the program is killed if it outlives `timeout`.
    @discardableResult
    public func wait(timeout: TimeInterval = 60) throws -> (status: Int32, signal: Int32) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            throw TestSupportError("\(process.executableURL?.lastPathComponent ?? "program") still running after \(Int(timeout)) s; stderr: \(stderr)")
        }
        process.waitUntilExit()
        lock.lock()
        while readers > 0 { lock.wait(until: Date().addingTimeInterval(0.2)) }
        lock.unlock()
        let signaled = process.terminationReason == .uncaughtSignal
        return (signaled ? -1 : process.terminationStatus, signaled ? process.terminationStatus : 0)
    }
}
