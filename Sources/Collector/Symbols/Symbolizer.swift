import Foundation
import SessionStore
import Tracking
import Vocabulary

/// Turns raw stacks into symbolized locations: function (demangled, with the binary's own spelling
/// kept), offset, module, build-id and file offset, and file:line of the call instruction (return
/// address - 1), with each inlined call a frame of its own. User frames go through elfutils' libdwfl,
/// one handle per module as it was loaded (`ModuleSymbols`), so a library that has since been unloaded
/// still resolves from its file; JIT code through the process's perf map (`JITFrames`); kernel frames
/// through /proc/kallsyms. Each distinct address is symbolized once and becomes one location the
/// session stores once, however many stacks pass through it.
public final class Symbolizer {
    /// Every module of the session by its id, as registered; opened for symbols on first use.
    private var known: [Int64: SessionModule] = [:]
    private var modules: [Int64: ModuleSymbols?] = [:]
    private var locationIDs = LocationIndex()
    private let preloadedKernel: KernelSymbols?
    /// kallsyms is read once per collection: a source that already read it (the kernel side) hands it in.
    private lazy var kernel: KernelSymbols? = preloadedKernel ?? KernelSymbols.load()
    private let debugRoots: [String]
    private let jit = JITFrames()

    /// Where separate debug files are looked for when the caller names no other place.
    public static let defaultDebugRoots = ["/usr/lib/debug"]

    /// `debugRoots`: directories holding `.build-id/xx/….debug` trees and debuglink files.
    public init(kernelSymbols: KernelSymbols? = nil, debugRoots: [String] = Symbolizer.defaultDebugRoots) {
        preloadedKernel = kernelSymbols
        self.debugRoots = debugRoots
    }

    /// Makes modules known before stacks that lie in them are symbolized.
    public func register(_ modules: [SessionModule]) {
        for m in modules { known[m.sessionID] = m }
    }

    /// The session form of `stacks`: their records, and the locations first seen in them.
    public func symbolize(_ stacks: [NewStack]) -> (locations: [LocationRecord], stacks: [StackRecord]) {
        jit.startBatch()
        var newLocations: [LocationRecord] = []
        let records = stacks.map { s in
            StackRecord(
                id: s.id, space: s.space, origin: s.origin, truncated: s.truncated, mayBeIncomplete: s.mayBeIncomplete, taskPid: s.task?.pid,
                taskComm: s.task.map { $0.comm.description }, locations: s.frames.map { location(s, $0, &newLocations) })
        }
        return (newLocations, records)
    }

    private func location(_ s: NewStack, _ f: RawFrame, _ new: inout [LocationRecord]) -> Int64 {
        let kernelFrame = s.origin == .kernel
        let key = LocationIndex.Key(
            module: kernelFrame ? -1 : f.moduleID, space: !kernelFrame && f.moduleID == 0 ? s.space : 0, address: f.address)
        if let id = locationIDs.id(of: key) { return id }
        let id = locationIDs.add(key)
        let frames: [FrameRow]
        if kernelFrame {
            frames = [kernel?.resolve(f.address) ?? FrameRow(address: f.address, module: "kernel")]
        } else if let m = known[f.moduleID] {
            frames = symbols(of: m, pid: s.pid)?.resolve(f.address) ?? [FrameRow(address: f.address, module: m.info.path)]
        } else {
            frames = [jitFrame(f.address, pid: s.pid)]
        }
        let outer = frames.last
        let moduleID = kernelFrame || f.moduleID == 0 ? nil : f.moduleID
        new.append(
            LocationRecord(
                id: id, address: f.address, moduleID: moduleID, moduleName: moduleID == nil ? outer?.module : nil,
                fileOffset: outer?.fileOffset, offset: outer?.offset,
                lines: frames.allSatisfy { $0.function == nil && $0.file == nil }
                    ? [] : frames.map { SymbolLine(function: $0.function, systemName: $0.systemName, file: $0.file, line: $0.line) }))
        return id
    }

    private func symbols(of m: SessionModule, pid: Int32?) -> ModuleSymbols? {
        if let cached = modules[m.sessionID] { return cached }
        let syms = ModuleSymbols(m, debugRoots: debugRoots, pid: pid)
        modules[m.sessionID] = syms
        return syms
    }

    /// A user frame outside every module.
    private func jitFrame(_ address: UInt64, pid: Int32?) -> FrameRow {
        guard let pid else { return FrameRow(address: address) }
        // As in every other frame, the code of a return address is the call just before it.
        if let hit = jit.name(pid: pid, address: address &- 1) {
            return FrameRow(address: address, function: hit.name, offset: hit.offset &+ 1, module: FrameRow.jitModule)
        }
        return jit.isJIT(pid: pid, address: address &- 1) ? FrameRow(address: address, module: FrameRow.jitModule) : FrameRow(address: address)
    }
}
