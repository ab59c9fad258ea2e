import Foundation

/// The session file's name when `-o` is not given: the one place it is decided, for every mode.
public enum SessionNaming {
    /// `PROGRAM.PID.leaks` in the current directory for a process, `kernel.leaks` for kernel mode.
    public static func defaultPath(program: String?, pid: Int32?) -> String {
        guard let program, let pid else { return "kernel.leaks" }
        let base = URL(fileURLWithPath: program).lastPathComponent
        return "\(base.isEmpty ? "pid" : base).\(pid).leaks"
    }

    /// A stand-in with the default name's directory, for checking before the pid is known.
    public static let provisional = "./leakcollect-check.leaks"
}
