import ArgumentParser
import LeakReport
import ReportFormats
import SessionStore

/// `leakreport peak SESSION`: the high-water mark and the stacks that held it.
struct PeakCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peak", abstract: "The moment outstanding memory was highest (all kinds and each alone), and the stacks holding it then.")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Option(help: "How many stacks to show.") var top: Int = 10
    @Option(help: "text or json.") var format: AnalysisFormat = .text
    @OptionGroup var profile: ProfileOptions

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        try reporting {
            let reader = try SessionReader(path: session)
            let sp = try SessionProfile.load(reader, try profile.request(frames: false))
            let report = SessionAnalyses.peak(sp, peaks: try reader.peaks(), kinds: profile.kind.kinds, top: top)
            switch format {
            case .text: print(PeakTextRenderer.render(report), terminator: "")
            case .json: print(PeakJSON(report).encoded(), terminator: "")
            }
        }
    }
}
