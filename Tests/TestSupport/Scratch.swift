import Foundation

/// The one directory a test process writes its files into: programs it compiles, sessions, fixtures.
/// It is `/tmp/leaktests-PID`, made on first use and removed with everything in it when the process exits,
/// so that a run of the suite leaves nothing behind. `LEAKTEST_KEEP=1` keeps it, to look at what a failing
/// test wrote; its path is then printed at exit.
public enum Scratch {
    /// The directory itself (mode 1777 like /tmp: some tests run programs as `nobody` that write into it).
    public static let directory: URL = {
        let dir = URL(fileURLWithPath: path(of: getpid()))
        try? FileManager.default.removeItem(at: dir) // a directory of an earlier process that had this pid
        if mkdir(dir.path, 0o755) != 0 && errno != EEXIST {
            return FileManager.default.temporaryDirectory // still usable; only the clean-up is lost
        }
        chmod(dir.path, 0o1777)
        atexit { Scratch.removeAtExit() }
        return dir
    }()

    private static func path(of pid: pid_t) -> String { "/tmp/leaktests-\(pid)" }

    /// By the exiting process's own pid: a forked child that exits must not remove its parent's directory.
    private static func removeAtExit() {
        let dir = path(of: getpid())
        if ProcessInfo.processInfo.environment["LEAKTEST_KEEP"] == "1" {
            print("kept the tests' files in \(dir) (LEAKTEST_KEEP=1)")
            return
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
