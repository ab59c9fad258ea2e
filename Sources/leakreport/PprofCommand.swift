import ArgumentParser
import LeakReport
import ReportFormats

/// `leakreport pprof SESSION -o heap.pb.gz`: a Go-style heap profile.
struct PprofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pprof",
        abstract: "Write a gzip'd pprof heap profile (inuse/alloc space and objects) for go tool pprof, Pyroscope, Parca, Grafana.")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Option(name: [.short, .customLong("output")], help: "File to write (- for stdout).") var output: String
    @OptionGroup var profile: ProfileOptions

    func run() throws {
        try reporting {
            let sp = try profile.load(session)
            let comments = ["leakcollect session \(session)", "command: \(sp.info.command.joined(separator: " "))"]
            try write(try PprofEncoder(comments: comments).encode(sp.profile), to: output)
        }
    }
}
