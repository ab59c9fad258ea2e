import Glibc

extension LaunchedProgram {
    /// A child this collector started some other way (BPF-only mode forks and execs it itself), followed
    /// to its exit the same way.
    public init(adopting pid: pid_t, command: [String]) {
        self.pid = pid
        self.command = command
    }
}
