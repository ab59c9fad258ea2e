import CollectionRunner
import Foundation
import RingFormat
import SessionStore
import Vocabulary

/// Sets up the two shim collections as sources for the runner: launch a program with libleakshim.so
/// preloaded, or attach to one that has it.
public enum ShimCollection {
    /// What a launch needs besides the command.
    public struct LaunchOptions {
        /// libleakshim.so to preload; default next to this executable.
        public var shimPath: String?
        /// LEAKSHIM_DEPTH and LEAKSHIM_RING_SIZE for the launched program.
        public var depth: Int?
        public var ringSize: UInt64?
        /// Collect the program's fork and exec children into the same session too.
        public var followChildren = false
        /// LEAKSHIM_SAMPLE_BYTES: sample allocations by bytes with this mean interval.
        public var sampleBytes: UInt64?
        /// Notes for the user (a ring that could not be followed).
        public var log: (String) -> Void = { _ in }

        public init(shimPath: String? = nil, depth: Int? = nil, ringSize: UInt64? = nil, followChildren: Bool = false, sampleBytes: UInt64? = nil) {
            self.shimPath = shimPath
            self.depth = depth
            self.ringSize = ringSize
            self.followChildren = followChildren
            self.sampleBytes = sampleBytes
        }
    }

    /// Starts `command` with the shim preloaded and takes the ring it hands over (leakhandshake.h). The
    /// program stays in our process group, so a Ctrl-C at the terminal reaches it as it would without the
    /// collector.
    public static func launch(_ command: [String], options: LaunchOptions) throws(CollectError) -> (LaunchSource, SessionInfo) {
        guard let programName = command.first else { throw .programNotFound("") }
        let shim = try locateShim(options.shimPath)
        _ = try LaunchedProgram.resolve(programName)
        let listener = try HandshakeListener()
        var env: [String: String] = ["LEAKSHIM_COLLECTOR_PID": String(getpid()), LR_HS_ENV: listener.name]
        let inherited = ProcessInfo.processInfo.environment["LD_PRELOAD"].map { $0.isEmpty ? "" : ":" + $0 } ?? ""
        env["LD_PRELOAD"] = shim + inherited
        if let d = options.depth { env["LEAKSHIM_DEPTH"] = String(d) }
        if let r = options.ringSize { env["LEAKSHIM_RING_SIZE"] = String(r) }
        if let s = options.sampleBytes { env["LEAKSHIM_SAMPLE_BYTES"] = String(s) }
        env[LR_HS_FOLLOW_ENV] = options.followChildren ? "1" : nil
        let program = try LaunchedProgram.spawn(command, environment: env)

        // The first image's hand-over. Others (children forked in constructors) wait for `begin`.
        var early: [RingHandover] = []
        var first: RingHandover?
        let deadline = monotonicNow() &+ 10_000_000_000
        while first == nil {
            for h in listener.poll() {
                if first == nil && h.pid == program.pid { first = h } else { early.append(h) }
            }
            if first != nil { break }
            if let how = program.poll() {
                let refused = listener.refusals.last.map { " (\($0))" } ?? ""
                throw .shimNotLoaded(
                    program: programName,
                    detail: "it \(how.summary) before handing over its ring\(refused) (statically linked and setuid programs ignore LD_PRELOAD)")
            }
            if monotonicNow() >= deadline {
                program.send(SIGKILL)
                _ = waitBriefly(program)
                throw .shimNotLoaded(
                    program: programName,
                    detail: "no leakshim ring within 10 s: is LD_PRELOAD set to libleakshim.so? (statically linked and setuid programs ignore LD_PRELOAD)")
            }
            usleep(1000)
        }
        guard let first else { throw .programNotFound(programName) }
        let mapping = first.mapping
        let reader = RingReader(mapping: mapping)
        // Read before the claim: the program waits for it, so its modules are still there to open.
        let maps = ProcMaps.read(pid: program.pid)
        // Only for resyncs: a launched program's ring holds everything from its start.
        let live = try? LiveTable.open(for: mapping)
        do { try reader.attach(mode: .launch) } catch { throw .ring(error.description) }
        let ring = RingSource(reader: reader, pid: program.pid, program: nil, command: command, maps: maps, live: live ?? nil)
        let info = SessionInfo(
            mode: .launch, command: command, pid: program.pid, startRealtimeNs: mapping.startRealtimeNs,
            startMonotonicNs: mapping.startMonotonicNs, intervalMs: 0, host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        let source = LaunchSource(
            program: program, listener: listener, first: ring, early: early, followChildren: options.followChildren, log: options.log)
        return (source, info)
    }

    /// Claims the ring of a running program that has the shim. The shim's live table gives the blocks
    /// allocated before the attach that are still live, with their stacks; the ring what follows.
    public static func attach(pid: Int32) throws(CollectError) -> (RingSource, SessionInfo) {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM, RingMapping.isAlive(pid: pid), let owner = ProcessOwner.of(pid: pid) else {
            throw .noSuchProcess(pid)
        }
        if let why = owner.refusal(pid: pid) { throw .other(why) }
        let mapping: RingMapping
        do { mapping = try RingMapping.open(pid: pid) } catch { throw .ring(error.description) }
        let reader = RingReader(mapping: mapping)
        let maps = ProcMaps.read(pid: pid)
        let live: LiveTable?
        do { live = try LiveTable.open(for: mapping) } catch { throw .ring(error.description) }
        do { try reader.attach(mode: .attach) } catch { throw .ring(error.description) }
        let command = commandLine(of: pid)
        let info = SessionInfo(
            mode: .attach, command: command, pid: pid, startRealtimeNs: realtimeNow(), startMonotonicNs: monotonicNow(), intervalMs: 0,
            host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        return (RingSource(reader: reader, pid: pid, program: nil, command: command, maps: maps, live: live, snapshotAtStart: true), info)
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
    public static func locateShim(_ explicit: String?) throws(CollectError) -> String {
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

    /// A process's argv from /proc/PID/cmdline (empty when unreadable).
    public static func commandLine(of pid: Int32) -> [String] {
        ProcFile.read("/proc/\(pid)/cmdline").map(parseCommandLine) ?? []
    }

    /// The NUL-separated arguments of /proc/PID/cmdline text.
    public static func parseCommandLine(_ text: String) -> [String] {
        text.utf8.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }
}
