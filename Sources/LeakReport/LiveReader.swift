import Foundation
import ReportFormats
import SessionStore
import Vocabulary

/// Refreshes a followed session on its own thread, once per collector interval, and hands each new
/// model to the view. Beside a busy collection on two cores a refresh's read can take several hundred
/// milliseconds of wall time (most of it waiting for a core); on the view's thread that froze the keys
/// and the screen for as long. Here the view redraws from the model it holds at once, and a new model
/// replaces it when its read is done. The session is touched only by the reader's thread once started.
public final class LiveReader: @unchecked Sendable {
    /// One refresh's read: wall time, the reader thread's CPU time, and the new intervals it found.
    public struct Read: Sendable {
        public var ns: UInt64
        public var cpuNs: UInt64
        public var intervals: Int
    }

    /// What the view draws from: the latest model, whether the collection has ended, and a count that
    /// changes with each new model.
    struct Published {
        var model: LiveView.Model
        var finished: Bool
        var generation: Int
    }

    private let session: LiveSession
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var published: Published
    private var sort: LiveView.Sort
    private var paused = false
    private var stopping = false
    private var running = false
    private var readLog: [Read] = []
    /// A pipe the reader writes a byte to after each new model, so the view's poll on its keys wakes at once.
    private let wakePipe: (read: Int32, write: Int32)

    init(session: LiveSession, sort: LiveView.Sort) {
        self.session = session
        self.sort = sort
        published = Published(model: session.model, finished: session.finished, generation: 0)
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            // Non-blocking both ways: the reader never waits on a full pipe, the view never on an empty one.
            for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        } else {
            fds = [-1, -1]
        }
        wakePipe = (fds[0], fds[1])
    }

    deinit {
        if wakePipe.read >= 0 { close(wakePipe.read) }
        if wakePipe.write >= 0 { close(wakePipe.write) }
    }

    /// Readable when a new model is waiting (-1 if no pipe could be made: the view then wakes on its timeout).
    var wakeFD: Int32 { wakePipe.read }

    func start() {
        condition.lock()
        running = true
        condition.unlock()
        let thread = Thread { [self] in loop() }
        thread.name = "live view reader"
        thread.start()
    }

    /// The latest model.
    var latest: Published {
        condition.lock()
        defer { condition.unlock() }
        return published
    }

    /// Every read so far that succeeded.
    public var reads: [Read] {
        condition.lock()
        defer { condition.unlock() }
        return readLog
    }

    /// Waits up to `timeoutMs` for a model newer than `generation`: it, or nil if none came. For a caller
    /// that waits on nothing else (the terminal also waits on its keys, polling `wakeFD` with them).
    func next(after generation: Int, timeoutMs: Int32) -> Published? {
        var fds = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&fds, 1, timeoutMs)
        drainWakeups()
        let now = latest
        return now.generation != generation ? now : nil
    }

    /// Empties the wake-up pipe (the view calls it when it wakes on the pipe).
    func drainWakeups() {
        guard wakePipe.read >= 0 else { return }
        var buf = [UInt8](repeating: 0, count: 64)
        while read(wakePipe.read, &buf, buf.count) > 0 {}
    }

    /// The order the next refresh builds its rows in (the view re-sorts the model it holds itself).
    func set(sort: LiveView.Sort) { update { $0.sort = sort } }

    /// While paused, no refresh reads the session.
    func set(paused: Bool) { update { $0.paused = paused } }

    /// Ends the reader and waits for its thread, which finishes the read under way first.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func update(_ change: (LiveReader) -> Void) {
        condition.lock()
        change(self)
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        var lastRead = DispatchTime.now().uptimeNanoseconds
        condition.lock()
        while !stopping && !published.finished {
            let next = lastRead &+ session.intervalNs
            let now = DispatchTime.now().uptimeNanoseconds
            if paused || now < next {
                _ = condition.wait(until: Date(timeIntervalSinceNow: paused ? 0.1 : Double(next - now) / 1e9))
                continue
            }
            let order = sort
            condition.unlock()
            lastRead = DispatchTime.now().uptimeNanoseconds
            let cpu = threadCPUNow()
            // A read that fails mid-write changes nothing: the view keeps the last good model.
            let fresh = (try? session.refresh(sort: order)) != nil
            let cpuNs = threadCPUNow() - cpu
            condition.lock()
            if fresh {
                published = Published(model: session.model, finished: session.finished, generation: published.generation + 1)
                readLog.append(Read(ns: session.loadNs, cpuNs: cpuNs, intervals: session.intervalsRead))
                var byte: UInt8 = 1
                if wakePipe.write >= 0 { _ = write(wakePipe.write, &byte, 1) }  // full pipe: a wake-up is already waiting
            }
        }
        running = false
        condition.broadcast()
        condition.unlock()
    }
}
