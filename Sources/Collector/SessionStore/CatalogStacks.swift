import Vocabulary

extension StackCatalog {
    /// The catalog's stacks by id (a live view adds tens of thousands of stacks per refresh: a Dictionary's
    /// hashing and rehashing was a fifth of reading them).
    public typealias Stacks = StackIDMap<Stack>
}
