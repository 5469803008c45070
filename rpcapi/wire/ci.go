package wire

// MethodLookupCI finds a name in a directory ignoring case (PROTOCOL.md,
// "Case-insensitive lookup"). Its params are EntryParams.
const MethodLookupCI = "lookup_ci"

// OpLookupCI is lookup_ci on the binary channel: the name in the payload,
// in directory Inode; the reply carries the entry's stat record followed
// by its real name (Length - StatSize bytes).
const OpLookupCI = 9

// LookupCIResult is the result of lookup_ci: the entry's real name, its
// inode number and its attributes.
type LookupCIResult struct {
	Name  string `json:"name"`
	Inode uint64 `json:"inode"`
	Stat  Stat   `json:"stat"`
}
