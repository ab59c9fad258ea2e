import ArgumentParser
import LeakReport
import ReportFormats
import SessionStore

/// `leakreport churn SESSION`: temporary allocations by stack.
struct ChurnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn", abstract: "Stacks with the most temporary allocations (freed soon after they were made).")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Option(help: "How many stacks to show.") var top: Int = 10
    @Option(
        name: .customLong("shorter-than"),
        help: "Count blocks that lived shorter than this (e.g. 1ms, 50ms) instead of heaptrack's definition (freed before the same thread's next allocation).")
    var shorterThan: String?
    @Option(help: "text or json.") var format: AnalysisFormat = .text
    @OptionGroup var profile: ProfileOptions

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        try reporting { try Self.report(session, request: try profile.request(frames: false), top: top, shorterThan: shorterThan, format: format) }
    }

    /// The report, shared with `top --temporary`.
    static func report(_ session: String, request: ProfileRequest, top: Int, shorterThan: String?, format: AnalysisFormat) throws {
        let limit = try shorterThan.map(ValueParsers.duration)
        let sp = try SessionProfile.load(try SessionReader(path: session), request)
        let report = try SessionAnalyses.churn(sp, shorterThanNs: limit, top: top)
        switch format {
        case .text: print(ChurnTextRenderer.render(report), terminator: "")
        case .json: print(ChurnJSON(report).encoded(), terminator: "")
        }
    }
}
