import ArgumentParser
import CLISupport
import LeakReport
import SessionStore
import Vocabulary

/// `leakreport reclaim SESSION`: reclaim latency histograms, the processes that stalled, kswapd, shrinkers.
struct ReclaimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reclaim", abstract: "Direct and memcg reclaim latency histograms, top stalled processes, kswapd and shrinkers.")

    @Argument(help: "Session file written by leakcollect --kernel.") var session: String
    @Option(help: "How many stalled processes to list per kind of reclaim.") var top: Int = 10
    @Flag(help: "Also print the per-interval columns (text only; JSON always has them).") var intervals = false
    @Option(help: "text or json.") var format: OutputFormat = .text

    func validate() throws {
        guard top >= 0 else { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        do throws(SessionError) {
            let report = try ReclaimReport.build(try SessionReader(path: session), top: top)
            switch format {
            case .text: print(ReclaimTextRenderer.render(report, intervals: intervals), terminator: "")
            case .json: print(ReclaimJSON(report).encoded(), terminator: "")
            }
        } catch {
            throw UserError(error.description)
        }
    }
}
