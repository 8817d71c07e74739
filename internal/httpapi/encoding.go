package httpapi

import (
	"strconv"
	"strings"
)

// acceptsGzip reports whether Accept-Encoding header values (RFC 9110
// §12.5.3) accept gzip: a "gzip" or "x-gzip" coding, or else "*", with a
// q-value above 0.
func acceptsGzip(values []string) bool {
	star := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			ok := qualityAbove0(params)
			if coding == "*" {
				star = ok
				continue
			}
			return ok
		}
	}
	return star
}

// qualityAbove0 reads the q parameter of an Accept-Encoding element: a
// missing or unreadable one counts as 1.
func qualityAbove0(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.ToLower(strings.TrimSpace(k)) != "q" {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err != nil || q > 0
	}
	return true
}
