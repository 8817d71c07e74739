package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	_ "time/tzdata" // the zones below must load on machines without zoneinfo
)

// eventInput is the EventInput of the API contract.
type eventInput struct {
	UID         string            `json:"uid,omitempty"`
	Summary     string            `json:"summary"`
	Description string            `json:"description,omitempty"`
	Location    string            `json:"location,omitempty"`
	Start       string            `json:"start"`
	End         string            `json:"end"`
	AllDay      bool              `json:"allDay,omitempty"`
	TimeZone    string            `json:"timeZone,omitempty"`
	Status      string            `json:"status,omitempty"`
	RRule       string            `json:"rrule,omitempty"`
	ExDates     []string          `json:"exdates,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Texts for generated events: mixed scripts, punctuation that iCal must
// escape (, ; \ and newlines) and lines long enough to need folding,
// including multi-byte characters near the fold.
var (
	summaries = []string{
		"Teambesprechung – Q4-Planung",
		"Café mit Jürgen",
		"Überprüfung der Straßenbahnpläne",
		"Réunion d'équipe 🎉",
		"会议：产品路线图",
		"Zahnarzt Dr. Müller",
		"1:1 mit Ägidius",
		"Sprint-Review; Demo & Retro",
		"Ελληνικά μαθήματα",
		"Встреча с клиентом, Москва",
		"Lunch @ Nordsee",
		"Yoga im Park 🧘",
		"Release 2.4 \"Kiefer\" freeze",
		"Elternabend Klasse 4b",
		"Flug BER → LIS",
		"Geburtstag Oma Hildegard 🎂",
		"東京オフィスとの定例",
		"Backup-Test, Rechenzentrum Süd",
		"Budgetrunde mit Finanzen",
		"Kundenworkshop \\ Onboarding",
	}
	sentences = []string{
		"Bitte die Unterlagen vorher lesen, insbesondere Kapitel 3; Fragen gern vorab per Mail.",
		"Agenda: Rückblick, Kennzahlen, nächste Schritte.",
		"Raum ist gebucht; Beamer funktioniert (hoffentlich) diesmal.",
		"Ordre du jour : budget, recrutement, déménagement à l'été — à confirmer.",
		"参加者：田中さん、李さん、Müller 先生。資料は共有フォルダにあります。",
		"Zugangsdaten für das Videomeeting folgen kurz vorher.",
		"Στο τέλος θα υπάρχει καφές και γλυκά για όλους τους συμμετέχοντες.",
		"Parken im Hof ist möglich, Einfahrt über die Göhrener Straße.",
		"Notizen: https://wiki.example.org/team/protokolle?jahr=2026&q=öffentlich",
		"Mitbringen: Laptop, Ladegerät, gute Laune 😀 und Ideen für das Offsite.",
		"Протокол прошлой встречи прилагается; просьба ознакомиться заранее.",
	}
	locations = []string{
		"Raum 3.14, Hauptgebäude",
		"Müllerstraße 12, 10115 Berlin",
		"Café Blümchen; Terrasse",
		"Videokonferenz",
		"東京都千代田区丸の内1-1",
		"Salle Jean-Jaurès, 2ᵉ étage",
		"",
	}
	timedZones = []string{
		"Europe/Berlin", "Europe/Berlin", "Europe/Berlin", "Europe/Berlin",
		"Europe/London", "America/New_York", "Asia/Tokyo",
	}
)

// genEvents returns n deterministic events for a calendar in calTZ,
// starting around base: mostly timed events in a zone, a quarter all-day,
// a fifth recurring (some with exceptions), a few in UTC, a few cancelled
// or tentative.
func genEvents(n int, seed uint64, base time.Time, calTZ string) ([]eventInput, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	zones := map[string]*time.Location{}
	for _, name := range append(timedZones, calTZ) {
		loc, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("generate events: %w", err)
		}
		zones[name] = loc
	}
	day0 := time.Date(base.Year(), base.Month(), base.Day(), 0, 0, 0, 0, time.UTC)
	events := make([]eventInput, n)
	for i := range events {
		e := eventInput{
			Summary:  summaries[rng.IntN(len(summaries))],
			Location: locations[rng.IntN(len(locations))],
			Status:   pickStatus(rng),
		}
		if rng.IntN(3) == 0 {
			e.Summary = fmt.Sprintf("%s #%d", e.Summary, i+1)
		}
		if rng.IntN(2) == 0 {
			e.UID = fmt.Sprintf("bench-%05d-%x@calhook.example", i, seed)
		}
		var desc []string
		for range rng.IntN(4) {
			desc = append(desc, sentences[rng.IntN(len(sentences))])
		}
		e.Description = strings.Join(desc, "\n")
		if rng.IntN(5) == 0 {
			e.Metadata = map[string]string{"source": "calhookbench", "team": []string{"blau", "grün", "rot"}[rng.IntN(3)]}
		}

		day := day0.AddDate(0, 0, rng.IntN(365))
		switch k := rng.IntN(100); {
		case k < 25: // all-day, one to three days
			e.AllDay = true
			e.Start = day.Format(time.DateOnly)
			e.End = day.AddDate(0, 0, 1+rng.IntN(3)).Format(time.DateOnly)
			if rng.IntN(5) == 0 {
				e.RRule = "FREQ=YEARLY"
			}
		case k < 30: // timed in UTC, no zone
			start := time.Date(day.Year(), day.Month(), day.Day(), 6+rng.IntN(12), 15*rng.IntN(4), 0, 0, time.UTC)
			e.Start = start.Format(time.RFC3339)
			e.End = start.Add(time.Duration(30+15*rng.IntN(7)) * time.Minute).Format(time.RFC3339)
		default: // timed in a zone, a fifth of all events recurring
			tz := timedZones[rng.IntN(len(timedZones))]
			if k < 60 {
				tz = calTZ
			}
			loc := zones[tz]
			// 07:00–19:45 never falls into a daylight-saving gap.
			start := time.Date(day.Year(), day.Month(), day.Day(), 7+rng.IntN(13), 15*rng.IntN(4), 0, 0, loc)
			e.TimeZone = tz
			e.Start = start.Format(time.RFC3339)
			e.End = start.Add(time.Duration(30+15*rng.IntN(7)) * time.Minute).Format(time.RFC3339)
			if k >= 75 {
				e.RRule, e.ExDates = pickRecurrence(rng, start)
			}
		}
		events[i] = e
	}
	return events, nil
}

// pickStatus returns mostly confirmed, sometimes tentative or cancelled.
func pickStatus(rng *rand.Rand) string {
	switch k := rng.IntN(20); {
	case k == 0:
		return "cancelled"
	case k < 3:
		return "tentative"
	default:
		return "confirmed"
	}
}

// pickRecurrence returns a rule for a series starting at start and, for
// some weekly series, exception dates on real occurrences.
func pickRecurrence(rng *rand.Rand, start time.Time) (string, []string) {
	switch rng.IntN(4) {
	case 0:
		return "FREQ=DAILY;COUNT=5", nil
	case 1:
		until := start.AddDate(0, 3, 0).UTC().Format("20060102T150405Z")
		return "FREQ=WEEKLY;BYDAY=" + byDay(start) + ";UNTIL=" + until, nil
	case 2:
		return "FREQ=MONTHLY;COUNT=6", nil
	default:
		var ex []string
		// Weeks two and four, at the same wall-clock time in the zone.
		for _, w := range []int{2, 4}[:1+rng.IntN(2)] {
			ex = append(ex, start.AddDate(0, 0, 7*w).Format(time.RFC3339))
		}
		return "FREQ=WEEKLY;COUNT=10", ex
	}
}

// byDay returns the RFC 5545 weekday code of t.
func byDay(t time.Time) string {
	return [...]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}[t.Weekday()]
}
