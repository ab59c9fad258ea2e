import Tracking
import Vocabulary
@testable import UprobeSource

/// The BPF-only mode's uprobe ring-buffer records (bpf/uprobe_events.h, framed as FramedRecords says),
/// decoded and turned into events as the collector does, stacks included (inline frames, and stack-map
/// ids whose look-up fails: the target has no map), then applied to a tracker and cut.
enum UprobeTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        let depth = 127
        let tracker = Tracker(maxDepth: depth, now: 0)
        let space = tracker.openSpace(SpaceInfo(kind: .user, pid: 1, command: ["fuzz"], startNs: 0))
        let stacks = UprobeStacks(stacksFD: -1, depth: depth)
        let define: (StackDefinition) -> Void = { tracker.apply(.stack($0), in: space) }
        FramedRecords.forEach(in: input) { data, size in
            guard let record = UprobeRecord.decode(data, size: size) else { return }
            let event = record.event { id, inline in
                id >= 0
                    ? stacks.stack(mapID: id, complete: { !$0.isEmpty }, define: define)
                    : stacks.stack(inline: inline, complete: { !$0.isEmpty }, define: define)
            }
            if let event { tracker.apply(event, in: space) }
        }
        _ = tracker.cut(at: 1)
    }
}
