package console

import "github.com/calhook/calhook/internal/id"

// newToken returns a fresh random token of 64 hex characters.
func newToken() string { return id.FeedToken() }
