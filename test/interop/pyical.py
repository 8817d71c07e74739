"""Parse an iCalendar feed with Python's icalendar and print what it read.

Reads an .ics from stdin and prints the same JSON shape as icaljs.mjs (see
there), for internal/feed/interop_test.go to compare with what calhook
stored. Run it with the interpreter that has icalendar installed:

    /usr/bin/python3 test/interop/pyical.py < feed.ics

(Debian: apt-get install -y python3-icalendar, which brings python3-dateutil
and python3-tz.)

Time zones. icalendar resolves a TZID with its own zone database (pytz in
icalendar 4, zoneinfo in later versions) whenever the name is one it knows,
and uses the feed's VTIMEZONE only for names it does not. To check calhook's
VTIMEZONE output, "start", "end", "exdates" and "occurrences" are computed
here from the wall clock icalendar read and a tzinfo built from the feed's
own VTIMEZONE with Timezone.to_tz(). What icalendar resolved by itself is
reported as "libraryStart" and "libraryEnd", so the test can check that both
agree with the stored instants.

Occurrences. icalendar does not expand recurrences; this uses dateutil.rrule
on the naive wall clock (so that each occurrence keeps its wall time across
DST changes, as RFC 5545 requires), resolves each occurrence through the
VTIMEZONE, applies UNTIL to the resulting UTC instant and drops EXDATEs.
"""

import datetime
import json
import sys

import icalendar
from dateutil import rrule as durule

OCCURRENCES = 5
UTC = datetime.timezone.utc


def localize(tz, wall):
    """Attach tz to the naive wall clock wall."""
    if hasattr(tz, "localize"):  # pytz-style tzinfo (icalendar < 5)
        return tz.localize(wall)
    return wall.replace(tzinfo=tz)


def vtimezone_tz(vtimezone):
    # icalendar >= 5 may look the TZID up in its own database; we want the
    # definition the feed carries.
    try:
        return vtimezone.to_tz(lookup_tzid=False)
    except TypeError:
        return vtimezone.to_tz()


def iso_utc(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_date(v):
    return isinstance(v, datetime.date) and not isinstance(v, datetime.datetime)


class Reader:
    def __init__(self, cal):
        self.errors = []
        self.zones = {}
        for vtz in cal.walk("VTIMEZONE"):
            tzid = str(vtz["TZID"])
            try:
                self.zones[tzid] = vtimezone_tz(vtz)
            except Exception as e:  # report, keep going
                self.errors.append("VTIMEZONE %s: %r" % (tzid, e))

    def resolve(self, v, tzid, what):
        """Return (instant or date, library instant or date) for a value."""
        if is_date(v):
            return v, v
        if not tzid:
            if v.tzinfo is None:
                self.errors.append("%s: %s is floating (no zone)" % (what, v))
                return v.replace(tzinfo=UTC), v
            return v, v
        tz = self.zones.get(tzid)
        if tz is None:
            self.errors.append("%s: TZID=%s has no VTIMEZONE in the feed" % (what, tzid))
            return v, v
        return localize(tz, v.replace(tzinfo=None)), v

    def fmt(self, v, what):
        if is_date(v):
            return v.isoformat()
        if v.tzinfo is None:
            self.errors.append("%s: %s has no zone" % (what, v))
            return v.isoformat()
        return iso_utc(v)


def tzid_of(prop):
    return str(prop.params.get("TZID", "")) if prop is not None else ""


def date_values(prop):
    """Yield the values of a (possibly repeated) list property like EXDATE."""
    if prop is None:
        return
    props = prop if isinstance(prop, list) else [prop]
    for p in props:
        for leaf in p.dts:
            yield tzid_of(p), leaf.dt


def text(comp, name):
    v = comp.get(name)
    return "" if v is None else str(v)


def raw(comp, name):
    """The wire form of a non-TEXT property, e.g. a DURATION."""
    v = comp.get(name)
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v)
    return v.to_ical().decode("utf-8")


def past(value, until):
    """Report whether an occurrence lies after UNTIL (RFC 5545: inclusive)."""
    if is_date(value) or is_date(until):
        day = value if is_date(value) else value.astimezone(UTC).date()
        return day > (until if is_date(until) else until.date())
    return value > until


def expand(rd, ev, start, all_day, tzid, exdates, uid):
    """Return the first occurrences of ev, as instants or dates."""
    rule = raw(ev, "RRULE")
    parts, until = [], None
    for part in rule.split(";"):
        key, _, val = part.partition("=")
        if key.upper() == "UNTIL":
            until = val
        else:
            parts.append(part)
    if all_day:
        wall = datetime.datetime.combine(start, datetime.time())
    elif tzid:
        wall = ev["DTSTART"].dt.replace(tzinfo=None)
    else:
        wall = start.astimezone(UTC).replace(tzinfo=None)
    if until is not None:
        if len(until) == 8:
            until = datetime.datetime.strptime(until, "%Y%m%d").date()
        else:
            until = datetime.datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    tz = rd.zones.get(tzid, UTC) if tzid else UTC
    excluded = set(exdates)
    out = []
    for occ in durule.rrulestr(";".join(parts), dtstart=wall):
        value = occ.date() if all_day else localize(tz, occ)
        if until is not None and past(value, until):
            break
        if (value if all_day else value.astimezone(UTC)) in excluded:
            continue
        out.append(rd.fmt(value, "%s occurrence" % uid))
        if len(out) == OCCURRENCES:
            break
    return out


def read_event(rd, ev):
    uid = text(ev, "UID")
    dtstart = ev["DTSTART"]
    dtend = ev.get("DTEND")
    tzid = tzid_of(dtstart)
    start, lib_start = rd.resolve(dtstart.dt, tzid, "%s DTSTART" % uid)
    all_day = is_date(dtstart.dt)
    out = {
        "uid": uid,
        "summary": text(ev, "SUMMARY"),
        "description": text(ev, "DESCRIPTION"),
        "location": text(ev, "LOCATION"),
        "status": text(ev, "STATUS"),
        "sequence": int(ev.get("SEQUENCE", 0)),
        "dtstamp": rd.fmt(ev["DTSTAMP"].dt, "%s DTSTAMP" % uid) if "DTSTAMP" in ev else "",
        "allDay": all_day,
        "start": rd.fmt(start, "%s DTSTART" % uid),
        "end": "",
        "tzid": tzid,
        "rrule": raw(ev, "RRULE"),
        "exdates": [],
        "occurrences": [],
        "libraryStart": rd.fmt(lib_start, "%s DTSTART" % uid),
        "libraryEnd": "",
    }
    if dtend is not None:
        end, lib_end = rd.resolve(dtend.dt, tzid_of(dtend), "%s DTEND" % uid)
        out["end"] = rd.fmt(end, "%s DTEND" % uid)
        out["libraryEnd"] = rd.fmt(lib_end, "%s DTEND" % uid)
    exdates = []
    for ex_tzid, v in date_values(ev.get("EXDATE")):
        value, _ = rd.resolve(v, ex_tzid, "%s EXDATE" % uid)
        exdates.append(value if is_date(value) else value.astimezone(UTC))
        out["exdates"].append(rd.fmt(value, "%s EXDATE" % uid))
    if out["rrule"]:
        try:
            out["occurrences"] = expand(rd, ev, start, all_day, tzid, exdates, uid)
        except Exception as e:  # report, keep going
            rd.errors.append("%s: expand %s: %r" % (uid, out["rrule"], e))
    return out


def main():
    # Decode the whole body before unfolding, as a client reading an HTTP
    # response would: a fold that split a multi-byte sequence shows up as
    # U+FFFD in the text fields.
    ics = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    cal = icalendar.Calendar.from_ical(ics)
    rd = Reader(cal)
    doc = {
        "parser": "icalendar %s" % getattr(icalendar, "__version__", "(unknown version)"),
        "calendar": {
            "prodid": text(cal, "PRODID"),
            "version": raw(cal, "VERSION"),
            "x-wr-calname": text(cal, "X-WR-CALNAME"),
            "refresh-interval": raw(cal, "REFRESH-INTERVAL"),
        },
        "events": [read_event(rd, ev) for ev in cal.walk("VEVENT")],
    }
    doc["errors"] = rd.errors
    json.dump(doc, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
