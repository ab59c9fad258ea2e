import Foundation
import CollectionRunner
import SessionStore

/// A program leakcollect started with the shim preloaded, and how to learn that it ended.
public struct LaunchedProgram {
    public let pid: pid_t
    public let command: [String]

    /// Finds the program the way execvp would, so the errors come before anything is started.
    public static func resolve(_ program: String) throws(CollectError) -> String {
        let fm = FileManager.default
        func check(_ path: String) throws(CollectError) -> String? {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
            if isDir.boolValue { throw .notExecutable(program, reason: "is a directory") }
            // access(X_OK) succeeds for root whenever any x bit is set, and for none only as root; the
            // mode bits are what exec checks, so check both.
            var st = stat()
            guard access(path, X_OK) == 0, stat(path, &st) == 0, st.st_mode & 0o111 != 0 else {
                throw .notExecutable(program, reason: "is not executable")
            }
            return path
        }
        if program.isEmpty { throw .programNotFound(program) }
        if program.contains("/") {
            if let p = try check(program) { return p }
            throw .programNotFound(program)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            if let p = try check("\(dir)/\(program)") { return p }
        }
        throw .programNotFound(program)
    }

    /// Starts `command` with `environment` added to ours. The child stays in our process group, so a
    /// Ctrl-C at the terminal reaches both, as it would without the collector.
    public static func spawn(_ command: [String], environment extra: [String: String]) throws(CollectError) -> LaunchedProgram {
        guard let program = command.first else { throw .programNotFound("") }
        let path = try resolve(program)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        let argv = command.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, nil, nil, argv, envp)
        guard rc == 0 else { throw .spawnFailed(program, errno: rc) }
        return LaunchedProgram(pid: pid, command: command)
    }

    /// How the program ended, or nil while it runs.
    public func poll() -> SessionEnd? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return Self.decode(status) }
        if r < 0 && errno == ECHILD { return .gone }
        return nil
    }

    static func decode(_ status: Int32) -> SessionEnd {
        // The wait-status macros are not imported into Swift; these are their glibc definitions.
        let sig = status & 0x7f
        if sig == 0 { return .exited(status: (status >> 8) & 0xff) }
        return .signaled(signal: sig)
    }

    public func send(_ signal: Int32) { kill(pid, signal) }
}
