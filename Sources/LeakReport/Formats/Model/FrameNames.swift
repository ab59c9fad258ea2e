/// How a frame is named where only one name fits (folded stacks, flame graphs, the live view): its
/// function, or for an address the symbolizer could not name, the module and the offset into its file,
/// which stay the same from run to run (unlike the address, which ASLR moves).
public enum FrameNames {
    public static func name(_ f: ProfileFrame, in p: Profile) -> String {
        if let fn = f.function, !fn.isEmpty { return fn }
        if let m = p.module(of: f), let off = moduleOffset(f, m) {
            return "[\(basename(m.path))+0x\(String(off, radix: 16))]"
        }
        return "[unknown 0x\(String(f.address, radix: 16))]"
    }

    /// The address as an offset into the module's file, if the address lies in the module's range.
    public static func moduleOffset(_ f: ProfileFrame, _ m: ProfileModule) -> UInt64? {
        guard f.address >= m.start, f.address < m.limit || m.limit <= m.start else { return nil }
        return f.address - m.start &+ m.fileOffset
    }

    /// The last path component, as memleak prints modules.
    public static func basename(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
