// Package feed publishes calendars as token-protected iCalendar feeds.
// Render encodes a feed deterministically (RFC 5545: sorted properties,
// CRLF, lines folded at 75 octets), so that its ETag, a hash of the bytes,
// changes only when the content does. Service serves each feed from a
// cache until a notify.FeedsChanged note for its calendar or account
// drops it; a render that raced such a note is never cached.
package feed
