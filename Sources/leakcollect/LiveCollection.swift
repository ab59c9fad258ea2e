import Foundation
import LeakReport

/// `leakcollect --live`: the live view on a thread of its own, reading the session the collection
/// writes, while the collection runs on the main thread. The collector's log lines would tear the
/// screen, so they wait until the view has closed.
final class LiveCollection {
    private let view: LiveTerminal
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var pending: [String] = []
    private var showing = true

    init(path: String) {
        view = LiveTerminal(path: path, options: .init(ownProcess: false))
        let thread = Thread { [view, done, weak self] in
            // A view that cannot start (no terminal, a session that never appeared) leaves the collection alone.
            _ = try? view.run(waitForSession: 30)
            self?.closed()
            done.signal()
        }
        thread.name = "live view"
        thread.start()
    }

    /// The collector's log: straight to stderr once the view is closed, held until then.
    func log(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        if showing { pending.append(line) } else { Self.emit([line]) }
    }

    /// The collection ended: close the view (it notices the session's end by itself, within an
    /// interval) and print what was held back.
    func finish() {
        if done.wait(timeout: .now() + 2) == .timedOut {
            view.stop()
            done.wait()
        }
    }

    private func closed() {
        lock.lock()
        showing = false
        let lines = pending
        pending = []
        lock.unlock()
        Self.emit(lines)
    }

    private static func emit(_ lines: [String]) {
        for l in lines { FileHandle.standardError.write(Data("leakcollect: \(l)\n".utf8)) }
    }
}
