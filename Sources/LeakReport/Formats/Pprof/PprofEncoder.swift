import Foundation
import SwiftProtobuf

/// Writes a `Profile` as a pprof heap profile, the way Go's runtime writes one, so `go tool pprof`,
/// Pyroscope, Parca and Grafana read it as they read a Go heap profile:
/// - sample types `alloc_objects`/count, `alloc_space`/bytes, `inuse_objects`/count, `inuse_space`/bytes
///   (one sample per stack; `inuse_space` is the default);
/// - period type space/bytes, with the sampling period when the profile was sampled;
/// - labels `bytes` (the stack's average block size, as Go labels a sample with its object size),
///   `kind` (heap, mmap, kernel-slab, …) and `pid` when known;
/// - one mapping per module with its build-id and file offset, the main binary first;
/// - one location per distinct (address, module), its lines innermost first, inlined calls included.
///
/// Two profiles written by it can be compared with `go tool pprof -diff_base BASE NEW`: their sample
/// and period types are the same, and pprof matches functions by name, file and line, so addresses
/// that differ between runs do not matter.
public struct PprofEncoder {
    /// Notes for `pprof -comments` (the command, the session, …).
    public var comments: [String]

    public init(comments: [String] = []) { self.comments = comments }

    /// The gzip'd profile, as written to `heap.pb.gz`.
    public func encode(_ p: Profile) throws(FormatError) -> Data {
        try Gzip.compress(try encodeUncompressed(p))
    }

    /// The serialized protobuf without gzip framing.
    public func encodeUncompressed(_ p: Profile) throws(FormatError) -> Data {
        do {
            return try message(p).serializedData()
        } catch {
            throw .serialization(String(describing: error))
        }
    }

    func message(_ p: Profile) -> Pprof_Profile {
        var b = Builder(profile: p)
        return b.build(comments: comments)
    }
}

/// One encoding's interning tables; lives for one `message(_:)` call.
private struct Builder {
    let profile: Profile
    var strings = PprofStrings()
    var out = Pprof_Profile()
    /// Module index → mapping id (main binaries first).
    var mappingIDs: [Int: UInt64] = [:]
    var locationIDs: [LocationKey: UInt64] = [:]
    var functionIDs: [FunctionKey: UInt64] = [:]

    struct LocationKey: Hashable {
        var address: UInt64
        var module: Int
    }

    struct FunctionKey: Hashable {
        var name: String
        var systemName: String?
        var file: String?
    }

    init(profile: Profile) { self.profile = profile }

    mutating func build(comments: [String]) -> Pprof_Profile {
        out.sampleType = [
            valueType("alloc_objects", "count"), valueType("alloc_space", "bytes"),
            valueType("inuse_objects", "count"), valueType("inuse_space", "bytes"),
        ]
        out.defaultSampleType = strings.id("inuse_space")
        out.periodType = valueType("space", "bytes")
        if let period = profile.samplingPeriod { out.period = Int64(clamping: period) }
        if let start = profile.startTimeNs { out.timeNanos = Int64(clamping: start) }
        out.durationNanos = Int64(clamping: profile.durationNs)
        out.comment = comments.map { strings.id($0) }
        addMappings()
        out.sample.reserveCapacity(profile.stacks.count)
        for s in profile.stacks { out.sample.append(sample(s)) }
        out.stringTable = strings.table
        return out
    }

    private mutating func valueType(_ type: String, _ unit: String) -> Pprof_ValueType {
        var v = Pprof_ValueType()
        v.type = strings.id(type)
        v.unit = strings.id(unit)
        return v
    }

    private mutating func addMappings() {
        // pprof treats the first mapping as the main binary; a stable sort keeps the rest in order.
        let order = profile.modules.indices.filter { profile.modules[$0].isMainBinary } + profile.modules.indices.filter { !profile.modules[$0].isMainBinary }
        for i in order {
            let m = profile.modules[i]
            var mp = Pprof_Mapping()
            mp.id = UInt64(out.mapping.count + 1)
            mp.memoryStart = m.start
            mp.memoryLimit = m.limit
            mp.fileOffset = m.fileOffset
            mp.filename = strings.id(m.path)
            mp.buildID = strings.id(m.buildID)
            // Every frame arrives symbolized as far as it can be: no reader should try again.
            mp.hasFunctions_p = true
            mp.hasFilenames_p = true
            mp.hasLineNumbers_p = true
            mp.hasInlineFrames_p = true
            mappingIDs[i] = mp.id
            out.mapping.append(mp)
        }
    }

    private mutating func sample(_ s: ProfileStack) -> Pprof_Sample {
        var smp = Pprof_Sample()
        smp.value = [
            Int64(clamping: s.allocatedBlocks), Int64(clamping: s.allocatedBytes),
            Int64(clamping: s.inUseBlocks), Int64(clamping: s.inUseBytes),
        ]
        // A run of frames at one address, all but its last inlined, is one location.
        var start = 0
        smp.locationID.reserveCapacity(s.frames.count)
        while start < s.frames.count {
            var end = start
            while end + 1 < s.frames.count, s.frames[end].inlined, s.frames[end + 1].address == s.frames[start].address { end += 1 }
            smp.locationID.append(location(s.frames[start...end]))
            start = end + 1
        }
        let (blocks, bytes) = s.allocatedBlocks > 0 ? (s.allocatedBlocks, s.allocatedBytes) : (s.inUseBlocks, s.inUseBytes)
        if blocks > 0 { smp.label.append(numLabel("bytes", Int64(clamping: bytes / blocks), unit: "bytes")) }
        var kind = Pprof_Label()
        kind.key = strings.id("kind")
        kind.str = strings.id(s.kind)
        smp.label.append(kind)
        if let pid = s.pid { smp.label.append(numLabel("pid", Int64(pid), unit: nil)) }
        return smp
    }

    private mutating func numLabel(_ key: String, _ value: Int64, unit: String?) -> Pprof_Label {
        var l = Pprof_Label()
        l.key = strings.id(key)
        l.num = value
        l.numUnit = strings.id(unit)
        return l
    }

    /// The location of one address: its frames, innermost (inlined) first, as lines.
    private mutating func location(_ frames: ArraySlice<ProfileFrame>) -> UInt64 {
        let first = frames[frames.startIndex]
        // The symbolizer names an address in a module one way, so (address, module) identifies it.
        let key = LocationKey(address: first.address, module: first.module ?? -1)
        if let id = locationIDs[key] { return id }
        var loc = Pprof_Location()
        loc.id = UInt64(out.location.count + 1)
        loc.address = first.address
        if let m = first.module, let mid = mappingIDs[m] { loc.mappingID = mid }
        for f in frames {
            var line = Pprof_Line()
            line.functionID = function(f)
            line.line = Int64(f.line ?? 0)
            loc.line.append(line)
        }
        locationIDs[key] = loc.id
        out.location.append(loc)
        return loc.id
    }

    private mutating func function(_ f: ProfileFrame) -> UInt64 {
        let name = FrameNames.name(f, in: profile)
        let key = FunctionKey(name: name, systemName: f.systemName, file: f.file)
        if let id = functionIDs[key] { return id }
        var fn = Pprof_Function()
        fn.id = UInt64(out.function.count + 1)
        fn.name = strings.id(name)
        fn.systemName = strings.id(f.systemName ?? name)
        fn.filename = strings.id(f.file)
        functionIDs[key] = fn.id
        out.function.append(fn)
        return fn.id
    }
}
