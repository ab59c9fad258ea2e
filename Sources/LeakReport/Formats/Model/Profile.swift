/// A loaded object (executable, shared library, the kernel or a kernel module) that frames point into.
public struct ProfileModule: Hashable, Sendable {
    /// Path as the process saw it (`/usr/lib/x86_64-linux-gnu/libc.so.6`), or a name such as `[kernel]`.
    public var path: String
    /// The GNU build-id as lowercase hex, when the object has one.
    public var buildID: String?
    /// The address range the object's executable mapping occupies in the process, `[start, limit)`.
    public var start: UInt64
    public var limit: UInt64
    /// The file offset that `start` maps.
    public var fileOffset: UInt64
    /// The program's own executable (pprof lists it first).
    public var isMainBinary: Bool

    public init(path: String, buildID: String? = nil, start: UInt64, limit: UInt64, fileOffset: UInt64 = 0, isMainBinary: Bool = false) {
        self.path = path
        self.buildID = buildID
        self.start = start
        self.limit = limit
        self.fileOffset = fileOffset
        self.isMainBinary = isMainBinary
    }
}

/// One frame of a stack, symbolized as far as the symbolizer got.
///
/// An inlined call has a frame of its own with the same `address` as the frame of the function it was
/// inlined into, and `inlined` set; the run of frames sharing an address ends with the one frame that is
/// not inlined (the function the instruction physically lies in).
public struct ProfileFrame: Hashable, Sendable {
    /// The return address (or, for the innermost frame, the instruction address) in the process.
    public var address: UInt64
    /// The name to show (demangled), if the address was symbolized.
    public var function: String?
    /// The name as the symbol table spells it (mangled), when it differs from `function`.
    public var systemName: String?
    /// How far the address lies past the start of its function (text prints `function+0xOFF`).
    public var offset: UInt64?
    /// Source file and line of the call instruction.
    public var file: String?
    public var line: Int?
    /// This frame was inlined into the next one (which has the same address).
    public var inlined: Bool
    /// Index into `Profile.modules`, if the address lies in a known object.
    public var module: Int?

    public init(
        address: UInt64, function: String? = nil, systemName: String? = nil, offset: UInt64? = nil, file: String? = nil, line: Int? = nil,
        inlined: Bool = false, module: Int? = nil
    ) {
        self.address = address
        self.function = function
        self.systemName = systemName
        self.offset = offset
        self.file = file
        self.line = line
        self.inlined = inlined
        self.module = module
    }
}

/// Outstanding bytes of one stack at one moment.
public struct SeriesPoint: Hashable, Sendable {
    /// Nanoseconds since the profile's start.
    public var timeNs: UInt64
    public var bytes: UInt64

    public init(timeNs: UInt64, bytes: UInt64) {
        self.timeNs = timeNs
        self.bytes = bytes
    }
}

/// The allocations made from one call stack, of one kind, by one process.
public struct ProfileStack: Hashable, Sendable {
    /// Innermost first.
    public var frames: [ProfileFrame]
    /// What was allocated: "heap", "mmap", "kernel-slab", "kernel-page", … (the session's kind names).
    public var kind: String
    public var pid: Int32?
    /// Still allocated at the profile's moment.
    public var inUseBytes: UInt64
    public var inUseBlocks: UInt64
    /// Allocated in total over the profile's span (freed or not).
    public var allocatedBytes: UInt64
    public var allocatedBlocks: UInt64
    /// Outstanding bytes over time, oldest first, for growth analyses; empty when not recorded.
    public var series: [SeriesPoint]

    public init(
        frames: [ProfileFrame], kind: String = "heap", pid: Int32? = nil, inUseBytes: UInt64, inUseBlocks: UInt64, allocatedBytes: UInt64? = nil,
        allocatedBlocks: UInt64? = nil, series: [SeriesPoint] = []
    ) {
        self.frames = frames
        self.kind = kind
        self.pid = pid
        self.inUseBytes = inUseBytes
        self.inUseBlocks = inUseBlocks
        self.allocatedBytes = allocatedBytes ?? inUseBytes
        self.allocatedBlocks = allocatedBlocks ?? inUseBlocks
        self.series = series
    }
}

/// Everything the formats and analyses of this module read: stacks with their figures, the objects their
/// frames point into, and when and how the figures were taken.
public struct Profile: Hashable, Sendable {
    public var stacks: [ProfileStack]
    public var modules: [ProfileModule]
    /// When collection started (CLOCK_REALTIME, ns since the Unix epoch), if known.
    public var startTimeNs: UInt64?
    /// How long the figures cover, in ns.
    public var durationNs: UInt64
    /// Bytes between two samples when allocations were sampled; nil when every allocation was recorded.
    /// Figures in `stacks` are then already the estimated totals.
    public var samplingPeriod: UInt64?

    public init(stacks: [ProfileStack], modules: [ProfileModule] = [], startTimeNs: UInt64? = nil, durationNs: UInt64 = 0, samplingPeriod: UInt64? = nil) {
        self.stacks = stacks
        self.modules = modules
        self.startTimeNs = startTimeNs
        self.durationNs = durationNs
        self.samplingPeriod = samplingPeriod
    }

    /// The module a frame points into, if its index is valid.
    public func module(of frame: ProfileFrame) -> ProfileModule? {
        guard let i = frame.module, modules.indices.contains(i) else { return nil }
        return modules[i]
    }
}
