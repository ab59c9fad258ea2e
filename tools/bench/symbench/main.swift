// Symbolizer benchmark: 131,072 distinct stacks of 38 frames over the real call sites of a binary
// (every return address after a call instruction, as objdump lists them), symbolized the way the
// collector does (one Symbolizer, the stacks in batches). Prints the time and what was resolved.
// Usage: symbench BINARY [stacks] [depth] [batches]
import Foundation
import SessionStore
import Symbols
import Tracking
import Vocabulary

let args = CommandLine.arguments
guard args.count >= 2 else {
    FileHandle.standardError.write("usage: symbench BINARY [stacks] [depth] [batches]\n".data(using: .utf8)!)
    exit(2)
}
let binary = args[1]
let stackCount = args.count > 2 ? Int(args[2]) ?? 131_072 : 131_072
let depth = args.count > 3 ? Int(args[3]) ?? 38 : 38
let batches = args.count > 4 ? Int(args[4]) ?? 16 : 16

// Return addresses: the instruction after each call.
let objdump = Process()
objdump.executableURL = URL(fileURLWithPath: "/usr/bin/objdump")
objdump.arguments = ["-d", "--no-show-raw-insn", binary]
let pipe = Pipe()
objdump.standardOutput = pipe
try objdump.run()
let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
objdump.waitUntilExit()
var returns: [UInt64] = []
var afterCall = false
for line in text.split(separator: "\n") {
    let t = line.drop { $0 == " " }
    guard let colon = t.firstIndex(of: ":"), let addr = UInt64(t[..<colon], radix: 16) else { continue }
    if afterCall { returns.append(addr) }
    afterCall = t[colon...].contains("call")
}
guard !returns.isEmpty, let file = ModuleFile.open(regularFileAt: binary) else {
    FileHandle.standardError.write("no call sites in \(binary)\n".data(using: .utf8)!)
    exit(1)
}

let bias: UInt64 = 0x5555_0000_0000
let module = SessionModule(
    sessionID: 1, space: 1, info: ModuleInfo(id: 1, path: binary, buildID: [], bias: bias, lo: bias, hi: bias + (1 << 40), file: file),
    loadedNs: 0)
// Stacks share their outer frames the way real ones do: frame k of stack i depends on i >> k's bits.
var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
func next() -> UInt64 {
    rng ^= rng << 13
    rng ^= rng >> 7
    rng ^= rng << 17
    return rng
}
let table = (0..<(depth * 4096)).map { _ in returns[Int(next() % UInt64(returns.count))] }
var stacks: [NewStack] = []
stacks.reserveCapacity(stackCount)
for i in 0..<stackCount {
    var frames: [RawFrame] = []
    for k in 0..<depth {
        // Inner frames vary most; the outermost are common to many stacks.
        let key = (i >> min(k / 2, 17)) & 4095
        frames.append(RawFrame(address: bias + table[k * 4096 + key], moduleID: 1))
    }
    stacks.append(NewStack(id: SessionStackID(i + 1), space: 1, origin: .user, frames: frames))
}
let distinct = Set(stacks.flatMap { $0.frames.map(\.address) }).count

let symbolizer = Symbolizer()
symbolizer.register([module])
let started = DispatchTime.now().uptimeNanoseconds
var locations = 0
var named = 0
var inlined = 0
var lined = 0
let per = (stackCount + batches - 1) / batches
for b in 0..<batches {
    let slice = Array(stacks[min(b * per, stackCount)..<min((b + 1) * per, stackCount)])
    let (locs, _) = symbolizer.symbolize(slice)
    locations += locs.count
    named += locs.filter { $0.lines.last?.function != nil }.count
    lined += locs.filter { $0.lines.last?.line != nil }.count
    inlined += locs.reduce(0) { $0 + max($1.lines.count - 1, 0) }
}
let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
print(
    "binary=\(URL(fileURLWithPath: binary).lastPathComponent) call_sites=\(returns.count) stacks=\(stackCount) depth=\(depth) "
        + "frames=\(stackCount * depth) distinct_addresses=\(distinct) locations=\(locations) named=\(named) with_line=\(lined) "
        + "inlined_frames=\(inlined) seconds=\(String(format: "%.2f", elapsed))")
