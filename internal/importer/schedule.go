package importer

import (
	"time"
)

// Schedule decides when an imported calendar is polled next. It is a pure
// function of the calendar's history and the clock, so it is tested without
// waiting.
//
// A healthy feed is polled at its base interval (the calendar's
// pollIntervalSeconds or Default), faster while a change is recent — a
// booking that moved is often followed by another — and slower while it is
// quiet:
//
//	last change within 15 min   base / 4
//	within 1 h                  base / 2
//	within 1 day                base
//	within 1 week               base × 2
//	longer, or never            base × 4
//
// always within [Min, max(Max, base)], so a feed is never polled below the
// floor and an explicit interval above the ceiling is kept. A calendar that
// has never changed counts its quiet time from its creation. A failing feed
// backs off exponentially from min(base, 1 min) up to the same ceiling. A
// server's Retry-After or Cache-Control max-age moves the next poll later
// (never past the ceiling, or a day for Retry-After). The result is spread
// by ±Jitter so that feeds created together do not stay in lockstep.
type Schedule struct {
	// Default is the base interval of a calendar without its own.
	Default time.Duration
	// Min is the floor: no feed is polled more often.
	Min time.Duration
	// Max is the ceiling of the slowdown and of the backoff.
	Max time.Duration
	// Jitter is the relative spread, e.g. 0.1 for ±10%.
	Jitter float64
}

// Defaults of Schedule.
const (
	DefaultInterval    = 5 * time.Minute
	DefaultMinInterval = 30 * time.Second
	DefaultMaxInterval = time.Hour
	DefaultJitter      = 0.1
	// maxRetryAfter bounds how far a server's Retry-After can push a poll.
	maxRetryAfter = 24 * time.Hour
)

func (s Schedule) withDefaults() Schedule {
	if s.Default <= 0 {
		s.Default = DefaultInterval
	}
	if s.Min <= 0 {
		s.Min = DefaultMinInterval
	}
	if s.Max <= 0 {
		s.Max = DefaultMaxInterval
	}
	if s.Max < s.Min {
		s.Max = s.Min
	}
	if s.Jitter < 0 {
		s.Jitter = 0
	}
	return s
}

// base returns the calendar's base interval.
func (s Schedule) base(pollInterval time.Duration) time.Duration {
	if pollInterval > 0 {
		return pollInterval
	}
	return s.Default
}

// ceiling is the longest interval for a calendar with the given base.
func (s Schedule) ceiling(base time.Duration) time.Duration {
	return max(s.Max, base)
}

func (s Schedule) clamp(d, base time.Duration) time.Duration {
	return min(max(d, s.Min), s.ceiling(base))
}

// Healthy returns the interval after a successful poll, before jitter.
// lastChange is the last poll that changed an event (zero if none);
// created is the calendar's creation time.
func (s Schedule) Healthy(pollInterval time.Duration, lastChange, created, now time.Time) time.Duration {
	base := s.base(pollInterval)
	quiet := now.Sub(created)
	if !lastChange.IsZero() {
		quiet = now.Sub(lastChange)
	}
	var d time.Duration
	switch {
	case !lastChange.IsZero() && quiet < 15*time.Minute:
		d = base / 4
	case !lastChange.IsZero() && quiet < time.Hour:
		d = base / 2
	case quiet < 24*time.Hour:
		d = base
	case quiet < 7*24*time.Hour:
		d = base * 2
	default:
		d = base * 4
	}
	return s.clamp(d, base)
}

// Backoff returns the interval after the failures-th failed poll in a row
// (failures >= 1), before jitter.
func (s Schedule) Backoff(pollInterval time.Duration, failures int) time.Duration {
	base := s.base(pollInterval)
	d := min(base, time.Minute)
	for i := 1; i < failures && d < s.ceiling(base); i++ {
		d *= 2
	}
	return s.clamp(d, base)
}

// Jittered spreads d by ±Jitter using r, a random number in [0, 1), and
// keeps the result at or above the floor.
func (s Schedule) Jittered(d time.Duration, r float64) time.Duration {
	j := time.Duration(float64(d) * s.Jitter * (2*r - 1))
	return max(d+j, s.Min)
}

// Later applies a server's wish to be asked later (Retry-After or
// Cache-Control max-age) to an interval: the larger one wins, up to limit.
func Later(d, wish, limit time.Duration) time.Duration {
	if wish > d {
		return min(wish, max(limit, d))
	}
	return d
}
