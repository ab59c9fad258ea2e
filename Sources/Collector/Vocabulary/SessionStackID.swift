/// A stack's id inside one session file. The collector assigns these; every source's own stack ids
/// (the shim's, BPF stack-map ids) are translated to one of these before anything is stored.
public typealias SessionStackID = UInt32
