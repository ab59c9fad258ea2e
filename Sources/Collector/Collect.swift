import Foundation
import SessionStore

/// How a user-space collection should run.
public struct CollectOptions {
    /// Session file; default `PROGRAM.PID.leaks` in the current directory.
    public var output: String?
    public var intervalNs: UInt64
    /// Stop (detach) after this long.
    public var durationNs: UInt64?
    /// libleakshim.so to preload; default next to this executable.
    public var shimPath: String?
    /// LEAKSHIM_DEPTH and LEAKSHIM_RING_SIZE for a launched program.
    public var depth: Int?
    public var ringSize: UInt64?
    /// Where progress notes go (the CLI prints them on stderr).
    public var log: (String) -> Void = { _ in }

    public init(output: String? = nil, intervalNs: UInt64 = 1_000_000_000, durationNs: UInt64? = nil) {
        self.output = output
        self.intervalNs = intervalNs
        self.durationNs = durationNs
    }
}

/// What a finished collection produced.
public struct CollectResult {
    public var sessionPath: String
    public var end: SessionEnd?
    /// Set when the collection stopped on an error after collecting something: the session holds
    /// everything up to it, and the CLI still exits non-zero with this line.
    public var failure: String?
}

/// The two user-space collections: launch a program with the shim, or attach to one that has it.
public enum Collect {
    /// Runs `command` with libleakshim.so preloaded and collects until it exits. A first Ctrl-C reaches
    /// the program as usual (same process group) and collection goes on until it exits; a SIGTERM sent
    /// to the collector alone is passed on to the program; a second signal stops at once and leaves
    /// the program running.
    public static func launch(_ command: [String], options: CollectOptions) throws(CollectError) -> CollectResult {
        guard let programName = command.first else { throw .programNotFound("") }
        let shim = try locateShim(options.shimPath)
        _ = try LaunchedProgram.resolve(programName)
        try checkWritable(options.output ?? "x.leaks")
        StopSignals.install()
        var env: [String: String] = ["LEAKSHIM_COLLECTOR_PID": String(getpid())]
        let inherited = ProcessInfo.processInfo.environment["LD_PRELOAD"].map { $0.isEmpty ? "" : ":" + $0 } ?? ""
        env["LD_PRELOAD"] = shim + inherited
        if let d = options.depth { env["LEAKSHIM_DEPTH"] = String(d) }
        if let r = options.ringSize { env["LEAKSHIM_RING_SIZE"] = String(r) }
        let program = try LaunchedProgram.spawn(command, environment: env)

        let mapping: RingMapping
        do {
            mapping = try RingMapping.waitForRing(pid: program.pid, timeout: .seconds(10))
        } catch {
            let how = waitBriefly(program)
            let detail = how.map { "it \($0.summary) before its ring could be read" } ?? error.description
            if how == nil { program.send(SIGKILL); _ = waitBriefly(program) }
            throw .shimNotLoaded(
                program: programName, detail: "\(detail) (statically linked and setuid programs ignore LD_PRELOAD)")
        }
        let reader = RingReader(mapping: mapping)
        do { try reader.attach(mode: .launch) } catch { throw .ring(error.description) }
        let path = options.output ?? "\(URL(fileURLWithPath: programName).lastPathComponent).\(program.pid).leaks"
        let info = SessionInfo(
            mode: .launch, command: command, pid: program.pid, startRealtimeNs: mapping.startRealtimeNs,
            startMonotonicNs: mapping.startMonotonicNs, intervalMs: Int(options.intervalNs / 1_000_000), host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        let writer: SessionWriter
        do {
            writer = try SessionWriter(creating: path, info: info)
        } catch {
            // Checked before the start, so this is rare (a full disk): a launch without a session is no use.
            reader.detach()
            program.send(SIGTERM)
            throw .session(error)
        }

        let started = monotonicNow()
        var end: SessionEnd?
        var forwarded = false
        let loop = CollectionLoop(source: RingSource(reader: reader), tracker: Tracker(), writer: writer, intervalNs: options.intervalNs)
        loop.run { idle in
            if end == nil { end = program.poll() }
            // After the exit, keep going until the ring is empty.
            if end != nil { return idle }
            let signals = StopSignals.count
            if signals >= 2 { return true }
            if signals == 1 && !forwarded {
                forwarded = true
                if StopSignals.last == SIGTERM { program.send(SIGTERM) }
            }
            if let d = options.durationNs, monotonicNow() &- started >= d { return true }
            return false
        }
        reader.detach()
        return finish(loop, path: path, end: end ?? .detached)
    }

    /// Attaches to a running program that has the shim and collects until it exits, Ctrl-C/SIGTERM, or
    /// `durationNs`. Only allocations made after the attach are seen.
    public static func attach(pid: Int32, options: CollectOptions) throws(CollectError) -> CollectResult {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM, RingMapping.isAlive(pid: pid) else { throw .noSuchProcess(pid) }
        try checkWritable(options.output ?? "x.leaks")
        StopSignals.install()
        let mapping: RingMapping
        do { mapping = try RingMapping.open(pid: pid) } catch { throw .ring(error.description) }
        let reader = RingReader(mapping: mapping)
        do { try reader.attach(mode: .attach) } catch { throw .ring(error.description) }
        let command = commandLine(of: pid)
        let name = command.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "pid"
        let path = options.output ?? "\(name).\(pid).leaks"
        let info = SessionInfo(
            mode: .attach, command: command, pid: pid, startRealtimeNs: realtimeNow(), startMonotonicNs: monotonicNow(),
            intervalMs: Int(options.intervalNs / 1_000_000), host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        let writer: SessionWriter
        do {
            writer = try SessionWriter(creating: path, info: info)
        } catch {
            reader.detach()
            throw .session(error)
        }
        options.log("attached to pid \(pid) (\(mapping.dataSize >> 20) MiB ring); Ctrl-C to detach")
        let started = monotonicNow()
        var end: SessionEnd?
        let loop = CollectionLoop(source: RingSource(reader: reader), tracker: Tracker(), writer: writer, intervalNs: options.intervalNs)
        loop.run { idle in
            if end == nil && !RingMapping.isAlive(pid: pid) { end = .gone }
            if end != nil { return idle }
            if StopSignals.count > 0 { return true }
            if let d = options.durationNs, monotonicNow() &- started >= d { return true }
            return false
        }
        reader.detach()
        return finish(loop, path: path, end: end ?? .detached)
    }

    private static func finish(_ loop: CollectionLoop, path: String, end: SessionEnd) -> CollectResult {
        var result = CollectResult(sessionPath: path, end: end)
        do {
            try loop.finish(end: end)
        } catch {
            result.failure = "\(error)"
        }
        return result
    }

    /// Fails early, before a program starts or a ring is claimed, when the session file cannot be created.
    static func checkWritable(_ path: String) throws(CollectError) {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw .session(.cannotCreate(path: path, detail: "no such directory \(dir)"))
        }
        guard access(dir, W_OK | X_OK) == 0 else {
            throw .session(.cannotCreate(path: path, detail: "\(dir) is not writable"))
        }
    }

    /// Waits up to a second for a launched program to end; nil if it is still running.
    private static func waitBriefly(_ program: LaunchedProgram) -> SessionEnd? {
        for _ in 0..<100 {
            if let e = program.poll() { return e }
            usleep(10_000)
        }
        return nil
    }

    /// libleakshim.so: the option, $LEAKCOLLECT_SHIM, or next to this executable (where SwiftPM builds it).
    static func locateShim(_ explicit: String?) throws(CollectError) -> String {
        var candidates: [String] = []
        if let explicit { candidates.append(explicit) }
        if let env = ProcessInfo.processInfo.environment["LEAKCOLLECT_SHIM"], !env.isEmpty { candidates.append(env) }
        if explicit == nil, let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            candidates.append(dir.appendingPathComponent("libleakshim.so").path)
            candidates.append(dir.deletingLastPathComponent().appendingPathComponent("lib/libleakshim.so").path)
        }
        for c in candidates where FileManager.default.isReadableFile(atPath: c) {
            // The dynamic loader needs an absolute path: the program may change directory.
            return URL(fileURLWithPath: c).standardizedFileURL.path
        }
        throw .shimNotFound(searched: candidates)
    }

    static func commandLine(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

}

/// Facts about the machine that every session records.
public enum HostFacts {
    /// The node name, as uname(2) gives it.
    public static var name: String { uname(\.nodename) }
    /// The kernel release, as uname(2) gives it.
    public static var kernelRelease: String { uname(\.release) }

    private static func uname<T>(_ field: KeyPath<utsname, T>) -> String {
        var u = utsname()
        Glibc.uname(&u)
        var value = u[keyPath: field]
        return withUnsafeBytes(of: &value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
