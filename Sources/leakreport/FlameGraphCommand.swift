import ArgumentParser
import Foundation
import LeakReport
import ReportFormats

/// `leakreport flamegraph SESSION -o leaks.svg`: a self-contained interactive SVG.
struct FlameGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flamegraph",
        abstract: "Write a self-contained SVG flame graph of outstanding memory (hover, click to zoom, search); --growth colours by growth.")

    @Argument(help: "Session file written by leakcollect.") var session: String
    @Option(name: [.short, .customLong("output")], help: "SVG file to write (- for stdout).") var output: String
    @Flag(help: "Colour frames by the growth rate of the stacks through them.") var growth = false
    @Flag(help: "Widths by outstanding allocations instead of bytes.") var count = false
    @Option(help: "Title at the top (default: the command).") var title: String?
    @OptionGroup var profile: ProfileOptions

    func run() throws {
        try reporting {
            let sp = try profile.load(session, series: growth)
            let name = title ?? sp.info.command.joined(separator: " ")
            let options = FlameGraph.Options(mode: growth ? .growth : .leak, weight: count ? .count : .bytes, title: name.isEmpty ? nil : name)
            try write(Data(FlameGraph.svg(sp.profile, options: options).utf8), to: output)
        }
    }
}
