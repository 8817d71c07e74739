package id

// SortedAt and UUIDv7At make Sorted's and UUIDv7's values for a given time.
var (
	SortedAt = sortedAt
	UUIDv7At = uuidV7At
)
