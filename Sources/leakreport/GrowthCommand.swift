import ArgumentParser
import LeakReport
import ReportFormats

/// `leakreport growth SESSION`: stacks ranked by how steadily their outstanding bytes grow.
struct GrowthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "growth", abstract: "Stacks ranked by steady growth of outstanding bytes over the session, with a sparkline each.")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Option(help: "How many stacks to show.") var top: Int = 10
    @Option(help: "text or json (json has each stack's series).") var format: AnalysisFormat = .text
    @OptionGroup var profile: ProfileOptions

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        try reporting {
            // Frames only for the stacks shown: ranking needs the series alone.
            var sp = try profile.load(session, series: true, frames: false)
            let ranking = GrowthRanking(sp.profile, top: top)
            sp.fillFrames(ranking.entries.map(\.stack))
            switch format {
            case .text: print(GrowthTextRenderer.render(ranking, of: sp.profile), terminator: "")
            case .json: print(GrowthJSON(ranking, of: sp.profile).encoded(), terminator: "")
            }
        }
    }
}
