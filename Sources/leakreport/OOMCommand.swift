import ArgumentParser
import CLISupport
import LeakReport
import SessionStore
import Vocabulary

/// `leakreport oom SESSION`: OOM kills of a kernel session with the system state at the time.
struct OOMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oom", abstract: "OOM kills with their context (meminfo, loadavg, memory cgroup), like oomkill.")

    @Argument(help: "Session file written by leakcollect --kernel.") var session: String
    @Option(help: "text or json.") var format: OutputFormat = .text

    func run() throws {
        do throws(SessionError) {
            let report = try OOMReport.build(try SessionReader(path: session))
            switch format {
            case .text: print(OOMTextRenderer.render(report), terminator: "")
            case .json: print(OOMJSON(report).encoded(), terminator: "")
            }
        } catch {
            throw UserError(error.description)
        }
    }
}
