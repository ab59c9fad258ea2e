import ArgumentParser

/// `leakreport`: reads sessions written by leakcollect.
struct LeakReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leakreport",
        abstract: "Report on a session written by leakcollect.",
        subcommands: [TopCommand.self, OOMCommand.self, ReclaimCommand.self],
        defaultSubcommand: nil)
}

/// Output formats every report offers.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
