"""Resolve local times with a VTIMEZONE, using the python icalendar package.

Used by TestWriteVTimezonePython. Reads JSON from stdin:

    {"ics": "<a VCALENDAR holding one VTIMEZONE>", "walls": [[y, mo, d, h, mi, s], ...]}

and writes a JSON list with, for each wall time, the sorted Unix times that
the time zone maps it to: one for a normal time, two in an overlap, none in a
gap.
"""

import datetime
import json
import sys

import icalendar


def to_tz(vtimezone):
    # icalendar >= 5 may look the TZID up in its own database; we want the
    # definition we wrote. (The test also gives the zone a TZID no database
    # knows.)
    try:
        return vtimezone.to_tz(lookup_tzid=False)
    except TypeError:
        return vtimezone.to_tz()


def candidates(tz, wall):
    if hasattr(tz, "localize"):  # pytz-style tzinfo (icalendar < 5)
        return [tz.localize(wall, is_dst=d).timestamp() for d in (False, True)]
    return [wall.replace(tzinfo=tz, fold=f).timestamp() for f in (0, 1)]


def main():
    req = json.load(sys.stdin)
    cal = icalendar.Calendar.from_ical(req["ics"])
    tz = to_tz(cal.walk("VTIMEZONE")[0])
    out = []
    for w in req["walls"]:
        wall = datetime.datetime(*w)
        found = set()
        for ts in candidates(tz, wall):
            # Keep only instants that really show this wall clock.
            back = datetime.datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
            if back == wall:
                found.add(int(ts))
        out.append(sorted(found))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
