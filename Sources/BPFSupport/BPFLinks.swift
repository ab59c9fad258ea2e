import CLibBPF
import Foundation

/// Destroying BPF links, many at once.
public enum BPFLinks {
    /// Destroys every link, each on its own thread, and returns when all are gone. Detaching a uprobe
    /// waits for an RCU grace period (about 100 ms here); one after another, the two dozen probes of
    /// BPF-only mode took seconds, in parallel the waits overlap.
    public static func destroyAll(_ links: [OpaquePointer]) {
        if links.count <= 1 {
            links.forEach { bpf_link__destroy($0) }
            return
        }
        let group = DispatchGroup()
        for link in links {
            group.enter()
            let handle = UInt(bitPattern: link)
            Thread.detachNewThread {
                if let l = OpaquePointer(bitPattern: handle) { bpf_link__destroy(l) }
                group.leave()
            }
        }
        group.wait()
    }
}
