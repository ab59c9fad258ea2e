import Foundation
import KernelSession
import SessionStore
import Vocabulary

/// `leakreport top --format json`. A contract that tools are built on: the names in these CodingKeys
/// are the one place the JSON field names are spelled, and existing names never change.
public struct TopJSON: Codable, Equatable {
    public struct Totals: Codable, Equatable {
        public var outstandingBytes: UInt64
        public var outstandingBlocks: UInt64
        public var lostEvents: UInt64
        public var suppressedBytes: UInt64?
        public var suppressedBlocks: UInt64?
        enum CodingKeys: String, CodingKey {
            case outstandingBytes = "outstanding_bytes"
            case outstandingBlocks = "outstanding_blocks"
            case lostEvents = "lost_events"
            case suppressedBytes = "suppressed_bytes"
            case suppressedBlocks = "suppressed_blocks"
        }
    }

    public struct Suppressed: Codable, Equatable {
        public var rule: String
        public var bytes: UInt64
        public var blocks: UInt64
    }

    /// One frame. An inlined call is a frame of its own (`inlined`), with the address of the code it
    /// was inlined into and no offset; its caller's line is the call site.
    public struct Frame: Codable, Equatable {
        public var address: String
        /// Demangled.
        public var function: String?
        /// The symbol as the binary spells it (mangled), when it differs from `function` (pprof's system_name).
        public var systemName: String?
        public var offset: UInt64?
        public var module: String?
        /// The module's GNU build-id, lower-case hex.
        public var buildID: String?
        /// The return address as an offset into the module's file, to symbolize it later elsewhere.
        public var fileOffset: UInt64?
        public var file: String?
        public var line: Int?
        public var inlined: Bool
        enum CodingKeys: String, CodingKey {
            case address, function, offset, module, file, line, inlined
            case systemName = "system_name"
            case buildID = "build_id"
            case fileOffset = "file_offset"
        }

        public init(_ f: FrameRow) {
            address = Formatting.hex(f.address)
            function = f.function
            systemName = f.systemName
            offset = f.offset
            module = f.module
            buildID = f.buildID
            fileOffset = f.fileOffset
            file = f.file
            line = f.line
            inlined = f.inlined
        }
    }

    public struct Block: Codable, Equatable {
        public var address: String
        public var size: UInt64
        public var ageNs: UInt64
        public var function: String
        public var backing: String?
        public var pid: Int32?
        public var comm: String?
        enum CodingKeys: String, CodingKey {
            case address, size, function, backing, pid, comm
            case ageNs = "age_ns"
        }
    }

    public struct Stack: Codable, Equatable {
        public var kind: String
        public var bytes: UInt64
        public var blocks: UInt64
        public var stackID: UInt32
        public var truncated: Bool
        /// Present (true) when the stack was walked through frame pointers past code that may not keep
        /// them, so callers may be missing (BPF-only mode).
        public var mayBeIncomplete: Bool?
        public var frames: [Frame]
        public var addresses: [Block]?
        /// Other stacks merged into this one because their symbolized frames are equal (a library
        /// loaded again at another address); absent when there are none.
        public var mergedStackIDs: [UInt32]?
        /// With `--sort growth`: the growth score, bytes/s (see `leakreport growth`).
        public var growthScore: Double?
        /// The process that allocated (user stacks).
        public var pid: Int32?
        enum CodingKeys: String, CodingKey {
            case kind, bytes, blocks, truncated, frames, addresses, pid
            case stackID = "stack_id"
            case mergedStackIDs = "merged_stack_ids"
            case growthScore = "growth_score"
            case mayBeIncomplete = "may_be_incomplete"
        }
    }

    /// One program image of a process: its command line and how it ended (`exec`, `exited`, `detached`).
    public struct Image: Codable, Equatable {
        public var command: [String]
        public var end: String?
    }

    /// One traced process: its images in order and what it left outstanding.
    public struct Process: Codable, Equatable {
        public var pid: Int32
        public var parentPid: Int32?
        public var images: [Image]
        public var bytes: UInt64
        public var blocks: UInt64
        enum CodingKeys: String, CodingKey {
            case pid, images, bytes, blocks
            case parentPid = "parent_pid"
        }
    }

    public struct Session: Codable, Equatable {
        public var mode: String
        public var command: [String]
        public var pid: Int32?
        public var end: String?
        public var durationNs: UInt64?
        /// Set when allocations were sampled by bytes with this mean interval: the figures are estimates.
        public var samplingIntervalBytes: UInt64?
        enum CodingKeys: String, CodingKey {
            case mode, command, pid, end
            case durationNs = "duration_ns"
            case samplingIntervalBytes = "sampling_interval_bytes"
        }
    }

    public var session: Session
    public var totals: Totals
    /// Every counter of the session (lost_events, missed_frees, unmatched_frees, ...).
    public var counters: [String: UInt64]?
    /// What each suppression rule left out of the totals.
    public var suppressed: [Suppressed]?
    public var stacks: [Stack]
    /// Every traced process, the launched one first (absent for kernel sessions).
    public var processes: [Process]?

    public init(_ r: TopReport) {
        session = Session(
            mode: r.info.mode.rawValue, command: r.info.command, pid: r.info.pid, end: r.info.end?.summary, durationNs: r.info.durationNs,
            samplingIntervalBytes: r.samplingIntervalBytes)
        processes = r.processes.isEmpty
            ? nil
            : r.processes.map { p in
                Process(
                    pid: p.pid, parentPid: p.parentPid, images: p.images.map { Image(command: $0.command, end: $0.end?.rawValue) }, bytes: p.bytes,
                    blocks: p.blocks)
            }
        totals = Totals(
            outstandingBytes: r.outstandingBytes, outstandingBlocks: r.outstandingBlocks, lostEvents: r.lostEvents,
            suppressedBytes: r.suppressed.reduce(0) { $0 + $1.bytes }, suppressedBlocks: r.suppressed.reduce(0) { $0 + $1.blocks })
        suppressed = r.suppressed.map { Suppressed(rule: $0.rule, bytes: $0.bytes, blocks: $0.blocks) }
        counters = Dictionary(uniqueKeysWithValues: r.counters.map { ($0.key.rawValue, $0.value) })
        stacks = r.stacks.map { s in
            Stack(
                kind: s.kind.rawValue, bytes: s.bytes, blocks: s.blocks, stackID: s.stackID, truncated: s.truncated,
                mayBeIncomplete: s.mayBeIncomplete ? true : nil, frames: s.frames.map(Frame.init),
                addresses: r.options.addresses
                    ? s.liveBlocks.map { b in
                        Block(
                            address: Formatting.hex(b.address), size: b.size, ageNs: r.info.asOfNs >= b.timeNs ? r.info.asOfNs - b.timeNs : 0,
                            function: b.function.rawValue, backing: b.backing?.rawValue, pid: s.taskPid, comm: s.taskComm)
                    } : nil,
                mergedStackIDs: s.mergedStackIDs.isEmpty ? nil : s.mergedStackIDs, growthScore: s.growth?.score, pid: s.pid)
        }
    }

    public func encoded() -> String { ReportJSON.encode(self) }
}
