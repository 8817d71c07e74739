package ical

import "time"

// Layouts of the RFC 5545 DATE and DATE-TIME forms (section 3.3.4 and 3.3.5).
const (
	layoutUTC   = "20060102T150405Z"
	layoutLocal = "20060102T150405"
	layoutDate  = "20060102"
)

// FormatUTC formats t as a UTC DATE-TIME, e.g. 20261201T140000Z.
func FormatUTC(t time.Time) string {
	var b [len(layoutUTC)]byte
	return string(t.UTC().AppendFormat(b[:0], layoutUTC))
}

// FormatLocal formats the wall clock of t in its own Location as a DATE-TIME
// without zone, e.g. 20261201T150000; pair it with a TZID parameter.
func FormatLocal(t time.Time) string {
	var b [len(layoutLocal)]byte
	return string(t.AppendFormat(b[:0], layoutLocal))
}

// FormatDate formats the date of t in its own Location as a DATE, e.g.
// 20261201.
func FormatDate(t time.Time) string {
	var b [len(layoutDate)]byte
	return string(t.AppendFormat(b[:0], layoutDate))
}
