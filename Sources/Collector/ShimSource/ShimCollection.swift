import CollectionRunner
import Foundation
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

        public init(shimPath: String? = nil, depth: Int? = nil, ringSize: UInt64? = nil) {
            self.shimPath = shimPath
            self.depth = depth
            self.ringSize = ringSize
        }
    }

    /// Starts `command` with the shim preloaded and claims its ring. The program stays in our process
    /// group, so a Ctrl-C at the terminal reaches it as it would without the collector.
    public static func launch(_ command: [String], options: LaunchOptions) throws(CollectError) -> (RingSource, SessionInfo) {
        guard let programName = command.first else { throw .programNotFound("") }
        let shim = try locateShim(options.shimPath)
        _ = try LaunchedProgram.resolve(programName)
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
            if how == nil {
                program.send(SIGKILL)
                _ = waitBriefly(program)
            }
            throw .shimNotLoaded(program: programName, detail: "\(detail) (statically linked and setuid programs ignore LD_PRELOAD)")
        }
        let reader = RingReader(mapping: mapping)
        let maps = ProcMaps.read(pid: program.pid)
        do { try reader.attach(mode: .launch) } catch { throw .ring(error.description) }
        let info = SessionInfo(
            mode: .launch, command: command, pid: program.pid, startRealtimeNs: mapping.startRealtimeNs,
            startMonotonicNs: mapping.startMonotonicNs, intervalMs: 0, host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        return (RingSource(reader: reader, pid: program.pid, program: program, command: command, maps: maps), info)
    }

    /// Claims the ring of a running program that has the shim. Only allocations made after the attach
    /// are seen.
    public static func attach(pid: Int32) throws(CollectError) -> (RingSource, SessionInfo) {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM, RingMapping.isAlive(pid: pid), let owner = ProcessOwner.of(pid: pid) else {
            throw .noSuchProcess(pid)
        }
        if let why = owner.refusal(pid: pid) { throw .other(why) }
        let mapping: RingMapping
        do { mapping = try RingMapping.open(pid: pid) } catch { throw .ring(error.description) }
        let reader = RingReader(mapping: mapping)
        let maps = ProcMaps.read(pid: pid)
        do { try reader.attach(mode: .attach) } catch { throw .ring(error.description) }
        let command = commandLine(of: pid)
        let info = SessionInfo(
            mode: .attach, command: command, pid: pid, startRealtimeNs: realtimeNow(), startMonotonicNs: monotonicNow(), intervalMs: 0,
            host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        return (RingSource(reader: reader, pid: pid, program: nil, command: command, maps: maps), info)
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
