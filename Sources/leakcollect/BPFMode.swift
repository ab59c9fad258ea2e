import CLISupport
import CollectionRunner
import SessionStore
import ShimSource
import UprobeSource

/// How `leakcollect` picks its source for a program or a pid: the shim's ring, or BPF uprobes
/// (`--bpf`, or `--attach` on a process that has no ring).
enum SourceChoice {
    /// The source, its session's description and the traced pid.
    typealias Chosen = (source: EventSource, info: SessionInfo, pid: Int32)

    static func attach(pid: Int32, bpf: Bool, depth: Int?, sampleBytes: UInt64?, log: (String) -> Void) throws -> Chosen {
        if !bpf {
            let shim = Result { () throws(CollectError) in try ShimCollection.attach(pid: pid) }
            switch shim {
            case .success(let (source, info)):
                // The shim samples as it was started (LEAKSHIM_SAMPLE_BYTES); an attach cannot change that.
                if sampleBytes != nil {
                    source.reader.detach()
                    throw UserError(
                        "pid \(pid) has the shim, whose sampling is set when it starts (LEAKSHIM_SAMPLE_BYTES): attach without --sample-bytes, or add --bpf")
                }
                log("attached to pid \(pid) (\(source.reader.info.dataSize >> 20) MiB ring); Ctrl-C to detach")
                return (source, info, pid)
            case .failure(let error):
                guard case .ring(let detail) = error, detail == RingError.noRing(pid: pid).description else { throw error }
                log("pid \(pid) has no leakshim ring: tracing it through BPF uprobes instead (--bpf)")
            }
        }
        let (source, info) = try UprobeCollection.attach(pid: pid, options: UprobeCollection.Options(depth: depth, sampleBytes: sampleBytes))
        log("attached to pid \(pid) through BPF uprobes; Ctrl-C to detach")
        return (source, info, pid)
    }

    static func launch(_ program: [String], bpf: Bool, options: ShimCollection.LaunchOptions, depth: Int?) throws -> Chosen {
        if bpf {
            let (source, info) = try UprobeCollection.launch(
                program, options: UprobeCollection.Options(depth: depth, sampleBytes: options.sampleBytes))
            return (source, info, source.pid)
        }
        let (source, info) = try ShimCollection.launch(program, options: options)
        return (source, info, source.pid)
    }
}
