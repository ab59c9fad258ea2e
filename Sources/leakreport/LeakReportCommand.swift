import ArgumentParser

/// `leakreport`: reads sessions written by leakcollect.
struct LeakReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakreport",
        abstract: "Report on a session written by leakcollect.",
        subcommands: [
            TopCommand.self, GrowthCommand.self, PeakCommand.self, ChurnCommand.self, DiffCommand.self, PprofCommand.self, FoldedCommand.self,
            FlameGraphCommand.self, OOMCommand.self, ReclaimCommand.self,
        ],
        defaultSubcommand: nil)
}

/// Output formats every report offers.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
