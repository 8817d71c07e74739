package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// New returns a Feed of rendered bytes, with an ETag derived from them, so
// every node computes the same one for the same content.
func New(body []byte, lastModified time.Time, version int64) *Feed {
	sum := sha256.Sum256(body)
	f := &Feed{
		Body:         body,
		ETag:         `"` + hex.EncodeToString(sum[:16]) + `"`,
		LastModified: lastModified.Truncate(time.Second),
		Version:      version,
	}
	f.Header.ETag = []string{f.ETag}
	f.Header.LastModified = []string{f.LastModified.UTC().Format(http.TimeFormat)}
	f.Header.ContentLength = []string{strconv.Itoa(len(f.Body))}
	return f
}
