/// Sums of figures read from a session (public: the session loader adds with them too): a corrupt or
/// hostile session may hold values near 2^64, and a trapping overflow would lose the whole report, so sums stop at the largest value instead.
extension UInt64 {
    public static func +| (a: UInt64, b: UInt64) -> UInt64 {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : s
    }

    public static func +|= (a: inout UInt64, b: UInt64) { a = a +| b }
}

infix operator +| : AdditionPrecedence
infix operator +|= : AssignmentPrecedence
