import Foundation
import ReportFormats
import SessionStore
import Vocabulary

/// Set by SIGINT/SIGTERM while `leakreport top --live` runs, so the loop restores the terminal before it ends.
nonisolated(unsafe) private var liveStopRequested: sig_atomic_t = 0

/// The terminal side of the live view: raw keys in, the screen redrawn every interval, the terminal
/// restored on the way out. `leakreport top --live` runs it on its own; `leakcollect --live` runs it on
/// a thread beside the collection, stopping it when the collection ends.
public final class LiveTerminal {
    public struct Options: Sendable {
        public var request: ProfileRequest
        public var sort: LiveView.Sort
        /// The view is this process's only job (leakreport): it handles SIGINT/SIGTERM by leaving the
        /// view, and tunes malloc for its refreshes (`keepFreedMemory`). The collector has its own
        /// handlers and its own memory policy.
        public var ownProcess: Bool
        public init(request: ProfileRequest = ProfileRequest(), sort: LiveView.Sort = .bytes, ownProcess: Bool) {
            self.request = request
            self.sort = sort
            self.ownProcess = ownProcess
        }
    }

    /// One screen of the live view for a session as it is now (`top --live --once`): for scripts, and to
    /// time the first read, a refresh after it (which finds nothing new in a finished session: the cost
    /// of keeping the model) and a redraw.
    public static func snapshot(_ path: String, options: Options, width: Int = 120, height: Int = 40) throws(SessionError) -> (
        lines: [String], loadNs: UInt64, refreshNs: UInt64, renderNs: UInt64
    ) {
        let live = try LiveSession.read(path, request: options.request, sort: options.sort)
        let first = live.loadNs
        try live.refresh(sort: options.sort)
        let started = DispatchTime.now().uptimeNanoseconds
        let lines = LiveView.render(live.model, width: width, height: height)
        return (lines, first, live.loadNs, DispatchTime.now().uptimeNanoseconds - started)
    }

    /// What `measureRefreshes` saw: every read on the reader's thread (wall, that thread's CPU, the new
    /// intervals it found) and, on the view's thread, each redraw of a new model and of it re-sorted
    /// (what a sort key costs).
    public struct Measured: Sendable {
        public var firstNs: UInt64
        public var reads: [LiveReader.Read]
        public var redrawNs: [UInt64]
        public var resortNs: [UInt64]
    }

    /// Follows a session without a terminal as `run` does: the reader refreshes it on its own thread
    /// every collector interval, and this thread, woken by each new model, draws it (at 120×40, as
    /// `snapshot`) and draws it sorted another way, writing both aside. The benchmark's hidden
    /// `top --live --measure-refresh`, run beside a collection as it writes, until the collection ends.
    public static func measureRefreshes(_ path: String, options: Options, waitForSession: TimeInterval = 30) throws(SessionError) -> Measured {
        if options.ownProcess { keepFreedMemory() }
        let live = try open(path, options: options, sort: options.sort, waitForSession: waitForSession) { false }
        var out = Measured(firstNs: live.loadNs, reads: [], redrawNs: [], resortNs: [])
        let reader = LiveReader(session: live, sort: options.sort)
        var shown = reader.latest
        reader.start()
        while !shown.finished {
            guard let latest = reader.next(after: shown.generation, timeoutMs: 100) else { continue }
            shown = latest
            let started = DispatchTime.now().uptimeNanoseconds
            _ = ViewState(sort: options.sort).screen(of: shown.model, width: 120, height: 40)
            let drawn = DispatchTime.now().uptimeNanoseconds
            _ = ViewState(sort: options.sort == .growth ? .bytes : .growth).screen(of: shown.model, width: 120, height: 40)
            out.redrawNs.append(drawn - started)
            out.resortNs.append(DispatchTime.now().uptimeNanoseconds - drawn)
        }
        reader.stop()
        out.reads = reader.reads
        return out
    }

    /// For a process that only follows a session (`Options.ownProcess`): keep what malloc frees. Each
    /// refresh frees and allocates arrays of megabytes (merged rows, grown tables); by default glibc
    /// maps them anew and returns them when freed, so every refresh faults them in again, and on this
    /// VM kind a page fault costs about 2 us: in the worst refresh of a 10M-block run, over half of
    /// its samples were the kernel clearing fresh pages (53k faults in the run; 41k with this, the
    /// rest first touches). The collector keeps its RSS low instead, so
    /// `leakcollect --live` does not do this.
    private static func keepFreedMemory() {
        MallocTuning.set(.mmapThreshold, MallocTuning.maxMmapThreshold)
        MallocTuning.set(.trimThreshold, Int32.max)
    }

    /// What the keys choose, applied to a model to draw it.
    struct ViewState {
        var sort: LiveView.Sort
        var selected = 0
        var expanded = false
        var paused = false

        /// The screen of `model` as the keys have it.
        func screen(of model: LiveView.Model, width: Int, height: Int) -> [String] {
            var m = model
            m.sort = sort
            m.selected = min(selected, max(0, m.rows.count - 1))
            m.expanded = expanded
            m.paused = paused
            return LiveView.render(m, width: width, height: height)
        }
    }

    /// The session's first read, waiting up to `waitForSession` for the file to appear and become
    /// readable (a collector just starting has no file yet, or one it has not written its first batch to).
    private static func open(
        _ path: String, options: Options, sort: LiveView.Sort, waitForSession: TimeInterval, giveUp: () -> Bool
    ) throws(SessionError) -> LiveSession {
        let deadline = Date().addingTimeInterval(waitForSession)
        while true {
            do {
                return try LiveSession.read(path, request: options.request, sort: sort)
            } catch {
                guard Date() < deadline, !giveUp() else { throw error }
                usleep(100_000)
            }
        }
    }

    /// Why the view ended.
    public enum Ending: Equatable, Sendable {
        /// The collection ended (the session is complete, or its collector died).
        case collectionEnded
        /// The user pressed q (or interrupted).
        case quit
        /// `stop()` was called.
        case stopped
    }

    private let path: String
    private let options: Options
    private let stopLock = NSLock()
    private var stopRequested = false

    public init(path: String, options: Options) {
        self.path = path
        self.options = options
    }

    /// Asks a running `run()` to end at its next wake-up (within 100 ms).
    public func stop() {
        stopLock.lock()
        stopRequested = true
        stopLock.unlock()
    }

    private var shouldStop: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested || liveStopRequested != 0
    }

    /// Runs until the collection ends, the user quits or `stop()`; the last screen stays on the
    /// terminal. Waits up to `waitForSession` for the file to appear and become readable (a collector
    /// just starting).
    public func run(waitForSession: TimeInterval = 10) throws(SessionError) -> Ending {
        var state = ViewState(sort: options.sort)
        if options.ownProcess { Self.keepFreedMemory() }
        let live = try Self.open(path, options: options, sort: state.sort, waitForSession: waitForSession) { shouldStop }
        let terminal = RawTerminal()
        if options.ownProcess {
            liveStopRequested = 0
            for sig in [SIGINT, SIGTERM] { signal(sig) { _ in liveStopRequested = 1 } }
        }
        defer {
            if options.ownProcess { for sig in [SIGINT, SIGTERM] { signal(sig, SIG_DFL) } }
        }
        var lastScreen: [String] = []
        var ending = Ending.stopped
        // The session is read on the reader's thread from here on; this one only draws and takes keys.
        let reader = LiveReader(session: live, sort: state.sort)
        var shown = reader.latest
        func draw() {
            let (w, h) = terminal.size
            lastScreen = state.screen(of: shown.model, width: w, height: h)
            terminal.draw(lastScreen)
        }
        terminal.enter()
        draw()
        reader.start()
        loop: while true {
            if shouldStop {
                ending = liveStopRequested != 0 ? .quit : .stopped
                break
            }
            if !state.paused {
                let latest = reader.latest
                if latest.generation != shown.generation {
                    shown = latest
                    draw()
                }
            }
            if shown.finished {
                ending = .collectionEnded
                break
            }
            let (keys, woken) = terminal.keys(timeoutMs: 100, wake: reader.wakeFD)
            if woken { reader.drainWakeups() }
            for key in keys {
                switch key {
                case .char("q"), .char("Q"):
                    ending = .quit
                    break loop
                case .char("b"): state.sort = .bytes
                case .char("c"): state.sort = .count
                case .char("g"): state.sort = .growth
                case .char("p"), .char(" "):
                    state.paused.toggle()
                    reader.set(paused: state.paused)
                case .up, .char("k"): state.selected = max(0, state.selected - 1)
                case .down, .char("j"): state.selected = min(state.selected + 1, max(0, shown.model.rows.count - 1))
                case .enter, .char("e"): state.expanded.toggle()
                default: continue
                }
                reader.set(sort: state.sort)
                draw()
            }
        }
        terminal.leave(keeping: lastScreen)
        reader.stop()
        return ending
    }
}

/// The terminal in cbreak mode on the alternate screen, and back. Signals (Ctrl-C) stay enabled.
final class RawTerminal {
    enum Key: Equatable {
        case char(Character), up, down, enter, other
    }

    private var saved = termios()
    private var raw = false
    private let out = FileHandle.standardOutput

    var size: (Int, Int) {
        var ws = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 { return (Int(ws.ws_col), Int(ws.ws_row)) }
        return (100, 30)
    }

    func enter() {
        if isatty(STDIN_FILENO) != 0, tcgetattr(STDIN_FILENO, &saved) == 0 {
            var t = saved
            t.c_lflag &= ~tcflag_t(ICANON | ECHO)
            raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0
        }
        // Alternate screen, cursor hidden.
        write("\u{1b}[?1049h\u{1b}[?25l")
    }

    func leave(keeping screen: [String]) {
        write("\u{1b}[?25h\u{1b}[?1049l")
        if raw { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
        // The last screen stays readable after the view ends.
        write(screen.joined(separator: "\n") + "\n")
    }

    func draw(_ lines: [String]) {
        // Home, each line cleared to its end, the rest of the screen cleared: no flicker, no leftovers.
        write("\u{1b}[H" + lines.map { $0 + "\u{1b}[K" }.joined(separator: "\r\n") + "\u{1b}[J")
    }

    private func write(_ s: String) { out.write(Data(s.utf8)) }

    /// Stdin was closed or broke: nothing more will be typed, so it is no longer polled.
    private var stdinGone = false

    /// Keys typed within `timeoutMs` (none if nothing was typed, or stdin is closed), returning early
    /// when `wake` becomes readable: `woken` then.
    func keys(timeoutMs: Int, wake: Int32 = -1) -> (keys: [Key], woken: Bool) {
        var fds = [pollfd(fd: stdinGone ? -1 : STDIN_FILENO, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        guard poll(&fds, 2, Int32(timeoutMs)) > 0 else { return ([], false) }
        let woken = fds[1].revents & Int16(POLLIN) != 0
        if fds[0].revents == 0 { return ([], woken) }
        if fds[0].revents & Int16(POLLIN) == 0 {
            stdinGone = true
            return ([], woken)
        }
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(STDIN_FILENO, &buf, buf.count)
        guard n > 0 else {
            if !(n < 0 && errno == EINTR) { stdinGone = true }
            return ([], woken)
        }
        var keys: [Key] = []
        var i = 0
        while i < n {
            let b = buf[i]
            if b == 0x1b, i + 2 < n, buf[i + 1] == UInt8(ascii: "[") {
                keys.append(buf[i + 2] == UInt8(ascii: "A") ? .up : buf[i + 2] == UInt8(ascii: "B") ? .down : .other)
                i += 3
                continue
            }
            keys.append(b == 0x0d || b == 0x0a ? .enter : .char(Character(Unicode.Scalar(b))))
            i += 1
        }
        return (keys, woken)
    }
}
