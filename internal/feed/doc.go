// Package feed publishes calendars as token-protected iCalendar feeds.
// Render encodes a feed deterministically (RFC 5545: sorted properties,
// CRLF, lines folded at 75 octets), so that its ETag, a hash of the bytes,
// changes only when the content does. A feed keeps the events within its
// calendar's window (recurring series while they still recur). Service
// serves each feed from a cache with a byte budget (least recently served
// leave first) until a notify.FeedsChanged note for its calendar or
// account drops it; a render that raced such a note is never cached, and
// a feed too big to cache is streamed.
package feed
