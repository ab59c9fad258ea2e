import ArgumentParser
import CLISupport
import Foundation
import LeakReport
import ReportFormats
import SessionStore

/// `leakreport diff BASE NEW`, or `leakreport diff SESSION --from T1 --to T2`.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Per-stack change of outstanding bytes and blocks between two sessions, or two moments of one (--from/--to).",
        discussion: """
            Stacks are matched by their symbolized frames, so two runs of one program compare despite ASLR. \
            --format pprof writes PREFIX.base.pb.gz and PREFIX.new.pb.gz for go tool pprof -diff_base.
            """)

    @Argument(help: "BASE.leaks NEW.leaks, or one session with --from and --to.") var sessions: [String]
    @Option(help: "With one session: the base moment, as time since the session started (e.g. 10s).") var from: String?
    @Option(help: "With one session: the new moment (e.g. 1m).") var to: String?
    @Option(help: "How many changed stacks to show (text).") var top: Int = 10
    @Option(help: "text, json or pprof.") var format: DiffFormat = .text
    @Option(name: [.short, .customLong("output")], help: "With --format pprof: the prefix of the two files to write.") var output: String?
    @OptionGroup var profile: ProfileOptions

    enum DiffFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, pprof
    }

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
        switch sessions.count {
        case 1: guard from != nil, to != nil else { throw ValidationError("one session needs --from and --to; or give two sessions") }
        case 2: guard from == nil, to == nil else { throw ValidationError("--from and --to compare two moments of one session; give one session") }
        default: throw ValidationError("give two sessions (BASE NEW), or one with --from and --to")
        }
        if format == .pprof, output == nil { throw ValidationError("--format pprof needs -o PREFIX (writes PREFIX.base.pb.gz and PREFIX.new.pb.gz)") }
    }

    func run() throws {
        try reporting {
            if sessions.count == 2, format != .pprof {
                // Matched through the stack trees; only the changes printed get frames (text: the top ones).
                let (base, new) = try loadBoth(frames: false)
                return show(ProfileDiff.sessions(base: base, new: new, framed: format == .text ? top : nil))
            }
            let (base, new) = try profiles()
            guard format == .pprof else { return show(ProfileDiff(base: base, new: new)) }
            let prefix = output ?? "diff"
            try write(try PprofEncoder(comments: ["leakreport diff, base"]).encode(base), to: prefix + ".base.pb.gz")
            try write(try PprofEncoder(comments: ["leakreport diff, new"]).encode(new), to: prefix + ".new.pb.gz")
            print("wrote \(prefix).base.pb.gz and \(prefix).new.pb.gz; compare with: go tool pprof -diff_base \(prefix).base.pb.gz \(prefix).new.pb.gz")
        }
    }

    /// As text or JSON (pprof writes files instead).
    private func show(_ diff: ProfileDiff) {
        print(format == .text ? DiffTextRenderer.render(diff, top: top) : DiffJSON(diff).encoded(), terminator: "")
    }

    /// The two sessions, read side by side (they are independent files).
    private func loadBoth(frames: Bool) throws -> (SessionProfile, SessionProfile) {
        var loaded: [Result<SessionProfile, Error>] = [.failure(UserError("not read")), .failure(UserError("not read"))]
        let lock = NSLock()
        let (paths, options) = (sessions, profile)
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = Result { try options.load(paths[i], frames: frames) }
            lock.lock()
            loaded[i] = r
            lock.unlock()
        }
        return (try loaded[0].get(), try loaded[1].get())
    }

    private func profiles() throws -> (Profile, Profile) {
        if sessions.count == 2 {
            let (base, new) = try loadBoth(frames: true)
            return (base.profile, new.profile)
        }
        let t1 = try ValueParsers.duration(from ?? ""), t2 = try ValueParsers.duration(to ?? "")
        let reader = try SessionReader(path: sessions[0])
        let sp = try SessionProfile.load(reader, try profile.request())
        try SessionAnalyses.checkMoments(from: t1, to: t2, in: sp)
        let history = try reader.history()
        return (sp.profile(at: t1, history: history), sp.profile(at: t2, history: history))
    }
}
