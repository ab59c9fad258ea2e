/// A plain-text table: columns as wide as their widest cell, text columns left-aligned and numbers
/// right-aligned, two spaces between columns.
public struct TextTable {
    public enum Align { case left, right }

    private let columns: [(title: String, align: Align)]
    private var rows: [[String]] = []

    public init(_ columns: [(String, Align)]) { self.columns = columns.map { (title: $0.0, align: $0.1) } }

    public mutating func add(_ cells: [String]) { rows.append(cells) }

    public func render() -> String {
        let all = [columns.map(\.title)] + rows
        let widths = columns.indices.map { i in all.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
        return all.map { row in
            columns.indices.map { i -> String in
                let cell = i < row.count ? row[i] : ""
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                // The last left-aligned column needs no trailing spaces.
                if columns[i].align == .left { return i == columns.count - 1 ? cell : cell + pad }
                return pad + cell
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}
