import BPFSupport
import CLibBPF
import CollectionRunner
import Foundation
import PausedSpawn
import SessionStore
import ShimSource
import Vocabulary

/// Sets up the two BPF-only collections as sources for the runner: launch a program without the shim
/// and trace it from its first instruction, or attach to a running one.
public enum UprobeCollection {
    /// What both need besides the target.
    public struct Options {
        /// Frames captured per stack (the stack map's depth), at most 127.
        public var depth: Int
        public var ringBufferBytes: UInt32 = 64 << 20
        public var stackMapEntries: UInt32 = 32768
        /// Sample allocations by bytes with this mean interval (the shim's scheme); nil records every one.
        public var sampleBytes: UInt64?

        public init(depth: Int?, sampleBytes: UInt64? = nil) {
            self.depth = min(depth ?? 64, Int(UE_MAX_FRAMES))
            self.sampleBytes = sampleBytes
        }
    }

    /// Where the kernel shows what it supports; tests point it elsewhere to play a kernel without uprobes.
    static var sysfs: String { ProcessInfo.processInfo.environment["LEAKCOLLECT_SYSFS"] ?? "/sys" }

    /// What every BPF-only collection needs from this process and the kernel, checked first so each
    /// lack is one line that says which.
    static func checkPrerequisites() throws(UprobeError) {
        let missing = Capabilities.missing()
        if !missing.isEmpty { throw .missingCapabilities(missing) }
        if !FileManager.default.fileExists(atPath: "\(sysfs)/bus/event_source/devices/uprobe/type") {
            throw .kernelLacks("no uprobe PMU at \(sysfs)/bus/event_source/devices/uprobe (CONFIG_UPROBE_EVENTS)")
        }
        if !FileManager.default.fileExists(atPath: "\(sysfs)/kernel/btf/vmlinux") {
            throw .kernelLacks("no BTF at \(sysfs)/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
        }
    }

    /// Attaches to a running process that has no shim.
    public static func attach(pid: Int32, options: Options) throws(UprobeError) -> (UprobeSource, SessionInfo) {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM, UprobeSource.isAlive(pid), let owner = ProcessOwner.of(pid: pid) else {
            throw .noSuchProcess(pid)
        }
        if let why = owner.refusal(pid: pid) { throw .mayNotTrace(why) }
        try checkPrerequisites()
        let modules = ProcessModules(pid: pid)
        guard modules.rescan(now: monotonicNow()) != nil else { throw .exitedDuringAttach(pid: pid) }
        let programs: UprobePrograms
        do throws(UprobeError) {
            programs = try UprobePrograms(
                pid: pid, depth: options.depth, ringBufferBytes: options.ringBufferBytes, stackMapEntries: options.stackMapEntries,
                sampleBytes: options.sampleBytes)
            if try probeAllocators(modules, programs) == 0 { throw .noAllocator(pid: pid, detail: noAllocatorDetail(modules)) }
            try hookLoader(modules, programs)
        } catch {
            // A probe refused with ESRCH, or no allocator found in maps that emptied: the process ended.
            throw UprobeSource.isAlive(pid) ? error : .exitedDuringAttach(pid: pid)
        }
        let start = monotonicNow()
        // A process that ended while the probes went on saw none of them work.
        guard UprobeSource.isAlive(pid) else { throw .exitedDuringAttach(pid: pid) }
        let command = ShimCollection.commandLine(of: pid)
        let info = SessionInfo(
            mode: .bpf, command: command, pid: pid, startRealtimeNs: realtimeNow(), startMonotonicNs: start, intervalMs: 0,
            host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
        return (try UprobeSource(programs: programs, modules: modules, program: nil, command: command, startNs: start), info)
    }

    /// Starts `command` without the shim, stopped before its first instruction; attaches; lets it run.
    /// A dynamically linked program stops again (SIGSTOP sent by the loader hook) once the dynamic loader
    /// has mapped its libraries and before any of their code runs, so its allocator is probed before the
    /// first allocation; a static one stops at its entry point.
    public static func launch(_ command: [String], options: Options) throws(UprobeError) -> (UprobeSource, SessionInfo) {
        guard let name = command.first else { throw .program("no such program: ") }
        let path: String
        do { path = try LaunchedProgram.resolve(name) } catch { throw .program(error.description) }
        try checkPrerequisites()
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        guard let exeFile = ModuleFile.openELF(absolute), let exe = ElfFacts.read(fd: exeFile.fd, functions: UprobePrograms.functionNames) else {
            throw .program("\(name) is not an ELF executable: BPF-only mode traces native programs (a script's interpreter can be traced by running it directly)")
        }
        // The hook that stops the program: the dynamic loader's notification, or a static program's entry.
        let hook: (file: ModuleFile, offset: UInt64)
        if let interp = exe.interpreter {
            guard let f = ModuleFile.openELF(interp), let facts = ElfFacts.read(fd: f.fd, functions: [ProcessModules.loaderHook]),
                let offset = facts.functions[ProcessModules.loaderHook]
            else { throw .program("cannot find \(ProcessModules.loaderHook) in \(name)'s dynamic loader \(interp)") }
            hook = (f, offset)
        } else {
            guard exe.functions["malloc"] != nil || exe.functions["free"] != nil else {
                throw .noAllocator(pid: 0, detail: "\(name) is statically linked and has no malloc or free symbol (stripped?): nothing to probe")
            }
            guard let entry = exe.entryOffset else { throw .program("\(name) has no entry point") }
            hook = (exeFile, entry)
        }

        let argv = command.map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var release: Int32 = -1
        let rc = leak_spawn_paused(path, argv, envp, &pid, &release)
        guard rc == 0 else { throw .program("cannot start \(name): \(String(cString: strerror(rc)))") }
        let child = LaunchedProgram(adopting: pid, command: command)
        var released = false
        func abandon() {
            if released { child.send(SIGKILL) } else { close(release) }
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        do throws(UprobeError) {
            let programs = try UprobePrograms(
                pid: pid, depth: options.depth, ringBufferBytes: options.ringBufferBytes, stackMapEntries: options.stackMapEntries,
            sampleBytes: options.sampleBytes)
            try programs.attachLoader(path: "/proc/self/fd/\(hook.file.fd)", offset: hook.offset)
            try programs.stopAtLoader(true)
            let start = monotonicNow()
            let startRealtime = realtimeNow()
            released = true
            if leak_spawn_release(release) != 0 { throw .program("cannot start \(name): the child is gone") }
            let modules = ProcessModules(pid: pid)
            try waitForAllocator(name: name, pid: pid, modules: modules, programs: programs)
            try programs.stopAtLoader(false)
            if exe.interpreter == nil { programs.detachLoader() }
            kill(pid, SIGCONT)
            let info = SessionInfo(
                mode: .bpf, command: command, pid: pid, startRealtimeNs: startRealtime, startMonotonicNs: start, intervalMs: 0,
                host: HostFacts.name, kernelRelease: HostFacts.kernelRelease)
            return (try UprobeSource(programs: programs, modules: modules, program: child, command: command, startNs: start), info)
        } catch {
            abandon()
            throw error
        }
    }

    /// Waits for the launched child's stops at the loader hook until its mappings hold an allocator,
    /// and probes it. Stops before that (the loader's first notification comes before it maps the
    /// libraries) are continued at once.
    private static func waitForAllocator(name: String, pid: pid_t, modules: ProcessModules, programs: UprobePrograms) throws(UprobeError) {
        let deadline = monotonicNow() &+ 10_000_000_000
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WUNTRACED | WNOHANG)
            if r == pid {
                if status & 0xff == 0x7f {
                    // Stopped: the loader hook fired.
                    guard modules.rescan(now: monotonicNow()) != nil else { throw .program("\(name) exited before it could be traced") }
                    if try probeAllocators(modules, programs) > 0 {
                        try hookLoaderIfAbsent(modules, programs)
                        return
                    }
                    kill(pid, SIGCONT)
                } else {
                    let end = status & 0x7f == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
                    throw .program("\(name) \(end) before it could be traced (no allocator was mapped yet)")
                }
            } else if r < 0 {
                throw .program("\(name) disappeared before it could be traced")
            }
            if monotonicNow() > deadline {
                throw .noAllocator(pid: pid, detail: "\(name) mapped no library with malloc or free within 10 s: \(noAllocatorDetail(modules))")
            }
            usleep(1000)
        }
    }

    /// Probes every mapped module that defines malloc or free and is not probed yet; how many it probed.
    private static func probeAllocators(_ modules: ProcessModules, _ programs: UprobePrograms) throws(UprobeError) -> Int {
        var n = 0
        for m in modules.loaded.values.sorted(by: { $0.info.lo < $1.info.lo }) {
            let offsets = m.facts.functions.filter { UprobePrograms.functionNames.contains($0.key) }
            guard offsets["malloc"] != nil || offsets["free"] != nil, !programs.isProbed(m.info.id) else { continue }
            try programs.attachAllocator(path: m.probePath, offsets: offsets, lo: m.info.lo, hi: m.info.hi, module: m.info.id)
            n += 1
        }
        return n
    }

    /// The dynamic loader's change notification, so dlopen and dlclose are seen as they happen.
    private static func hookLoader(_ modules: ProcessModules, _ programs: UprobePrograms) throws(UprobeError) {
        if let m = modules.loaded.values.first(where: { $0.facts.functions[ProcessModules.loaderHook] != nil }),
            let offset = m.facts.functions[ProcessModules.loaderHook]
        {
            try programs.attachLoader(path: m.probePath, offset: offset)
        }
    }

    private static func hookLoaderIfAbsent(_ modules: ProcessModules, _ programs: UprobePrograms) throws(UprobeError) {
        if !programs.hasLoaderHook { try hookLoader(modules, programs) }
    }

    private static func noAllocatorDetail(_ modules: ProcessModules) -> String {
        let names = modules.loaded.values.map { URL(fileURLWithPath: $0.info.path).lastPathComponent }.sorted()
        if names.isEmpty { return "it maps no ELF object that could be read" }
        return "none of its modules (\(names.joined(separator: ", "))) defines malloc or free (a static, stripped executable?)"
    }
}
