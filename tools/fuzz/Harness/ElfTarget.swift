import SessionStore
import Symbols
import Tracking
import Vocabulary

/// A module file as a hostile process could leave it on disk: the input is the ELF file. It is opened
/// as the collector opens modules (`ModuleFile`) and a stack of addresses across its first pages is
/// symbolized through libdwfl: symbols, DWARF lines, inlined scopes, debuglink and build-id lookups.
enum ElfTarget {
    static let bias: UInt64 = 0x7f00_0000_0000
    static let probes: [UInt64] = Array(stride(from: 0x1000, to: 0x1400, by: 8)) + [0, 1, 0x400, 0x2000, 0x10_0000, UInt64.max - bias]

    static func run(_ input: UnsafeRawBufferPointer) {
        let path = Scratch.write(input, name: "module.so")
        guard let file = ModuleFile.open(regularFileAt: path) else { return }
        let info = ModuleInfo(id: 1, path: path, buildID: [], bias: bias, lo: bias, hi: bias + 0x10_0000, file: file)
        let symbolizer = Symbolizer(kernelSymbols: nil, debugRoots: [Scratch.directory])
        symbolizer.register([SessionModule(sessionID: 1, space: 1, info: info, loadedNs: 0)])
        let frames = probes.map { RawFrame(address: bias &+ $0, moduleID: 1) }
        _ = symbolizer.symbolize([NewStack(id: 1, space: 1, origin: .user, pid: nil, frames: frames)])
    }
}
