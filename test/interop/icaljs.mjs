// Reads an iCalendar feed from stdin, parses it with ical.js (Mozilla's
// parser, as used by Thunderbird and Nextcloud) and prints what it read as
// JSON. internal/feed/interop_test.go compares that with what calhook
// stored; pyical.py prints the same shape from Python's icalendar.
//
// Output:
//
//	{
//	  "parser": "ical.js",
//	  "calendar": {"prodid", "version", "x-wr-calname", "refresh-interval"},
//	  "events": [{
//	    "uid", "summary", "description", "location", "status", "sequence",
//	    "dtstamp",            // UTC, 2026-03-10T08:09:10Z
//	    "allDay",             // DTSTART is a DATE
//	    "start", "end",       // UTC instants for date-times, 2026-07-14 for dates
//	    "tzid",               // DTSTART's TZID parameter, "" if none
//	    "rrule",              // RRULE as ical.js writes it back, "" if none
//	    "exdates",            // like start
//	    "occurrences"         // the first 5 occurrences after EXDATE, like start
//	  }],
//	  "errors": ["..."]       // anything the parser could not resolve
//	}
//
// Times with a TZID are resolved only through the feed's own VTIMEZONE
// components: they are registered with ICAL.TimezoneService (ical.js has no
// built-in zone table), and a TZID that resolves to no zone is reported in
// "errors" instead of being read as floating time.
//
// Usage: node icaljs.mjs < feed.ics   (after npm ci --prefix test/interop)

import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const OCCURRENCES = 5;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  // Decode the whole body as UTF-8 before unfolding, as a client reading
  // an HTTP response would: a fold that split a multi-byte sequence shows
  // up as U+FFFD in the text fields.
  return Buffer.concat(chunks).toString("utf8");
}

function icalVersion() {
  const url = new URL("./node_modules/ical.js/package.json", import.meta.url);
  try {
    return JSON.parse(readFileSync(url, "utf8")).version;
  } catch {
    return "(unknown version)";
  }
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// iso formats an ICAL.Time as a UTC instant, or as a date for DATE values.
function iso(t, errors, what) {
  if (t.isDate) {
    return `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}`;
  }
  if (t.zone === ICAL.Timezone.localTimezone) {
    errors.push(`${what}: ${t.toString()} is floating (no zone resolved)`);
  }
  const u = t.convertToZone(ICAL.Timezone.utcTimezone);
  return `${pad(u.year, 4)}-${pad(u.month)}-${pad(u.day)}T${pad(u.hour)}:${pad(u.minute)}:${pad(u.second)}Z`;
}

// text returns a property's value as TEXT. ical.js types unknown X-
// properties as "unknown" and leaves them escaped; RFC 5545 section 3.8.8.2
// makes TEXT their default, so decode them with ical.js's own TEXT decoder.
function text(comp, name) {
  const prop = comp.getFirstProperty(name);
  if (!prop) {
    return "";
  }
  const v = prop.getFirstValue();
  if (prop.type === "unknown") {
    return ICAL.design.icalendar.value.text.fromICAL(v);
  }
  return v === null || v === undefined ? "" : String(v);
}

function readEvent(vevent, errors) {
  const uid = text(vevent, "uid");
  const err = (msg) => errors.push(`${uid}: ${msg}`);
  const dtstart = vevent.getFirstProperty("dtstart");
  const start = dtstart.getFirstValue();
  const tzid = dtstart.getParameter("tzid") || "";
  if (tzid && (!start.zone || start.zone.tzid !== tzid)) {
    err(`DTSTART TZID=${tzid} resolved to zone ${start.zone && start.zone.tzid}`);
  }
  const end = vevent.getFirstPropertyValue("dtend");
  const rrule = vevent.getFirstPropertyValue("rrule");
  const exdates = [];
  for (const prop of vevent.getAllProperties("exdate")) {
    for (const v of prop.getValues()) {
      exdates.push(iso(v, errors, `${uid} EXDATE`));
    }
  }
  const stamp = vevent.getFirstPropertyValue("dtstamp");
  const out = {
    uid,
    summary: text(vevent, "summary"),
    description: text(vevent, "description"),
    location: text(vevent, "location"),
    status: text(vevent, "status"),
    sequence: vevent.getFirstPropertyValue("sequence") ?? 0,
    dtstamp: stamp ? iso(stamp, errors, `${uid} DTSTAMP`) : "",
    allDay: start.isDate,
    start: iso(start, errors, `${uid} DTSTART`),
    end: end ? iso(end, errors, `${uid} DTEND`) : "",
    tzid,
    rrule: rrule ? rrule.toString() : "",
    exdates,
    occurrences: [],
  };
  if (rrule) {
    // Event.iterator is a RecurExpansion over RRULE, RDATE and EXDATE.
    const it = new ICAL.Event(vevent).iterator();
    for (let next = it.next(); next && out.occurrences.length < OCCURRENCES; next = it.next()) {
      out.occurrences.push(iso(next, errors, `${uid} occurrence`));
    }
  }
  return out;
}

function main(ics) {
  const errors = [];
  const vcalendar = new ICAL.Component(ICAL.parse(ics));
  for (const vtimezone of vcalendar.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(vtimezone);
  }
  const calendar = {
    prodid: text(vcalendar, "prodid"),
    version: text(vcalendar, "version"),
    "x-wr-calname": text(vcalendar, "x-wr-calname"),
    "refresh-interval": text(vcalendar, "refresh-interval"),
  };
  const events = vcalendar.getAllSubcomponents("vevent").map((v) => readEvent(v, errors));
  return { parser: `ical.js ${icalVersion()}`, calendar, events, errors };
}

try {
  process.stdout.write(JSON.stringify(main(await readStdin())) + "\n");
} catch (e) {
  process.stderr.write(`icaljs.mjs: ${e.stack || e}\n`);
  process.exit(1);
}
