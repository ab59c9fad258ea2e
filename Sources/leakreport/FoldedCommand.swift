import ArgumentParser
import Foundation
import LeakReport
import ReportFormats

/// `leakreport folded SESSION`: folded stacks for flamegraph.pl, inferno and speedscope.
struct FoldedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "folded", abstract: "Folded stacks (flamegraph.pl, inferno, speedscope), weighted by outstanding bytes or --count.")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Flag(help: "Weigh by outstanding allocations instead of bytes.") var count = false
    @Option(name: [.short, .customLong("output")], help: "File to write (default: stdout).") var output: String = "-"
    @OptionGroup var profile: ProfileOptions

    func run() throws {
        try reporting {
            let sp = try profile.load(session)
            try write(Data(FoldedStacks.render(sp.profile, weight: count ? .count : .bytes).utf8), to: output)
        }
    }
}
