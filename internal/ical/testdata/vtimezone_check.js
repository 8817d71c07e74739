// Resolve local times with a VTIMEZONE, using ical.js (the parser of
// Thunderbird and many web calendars).
//
// Used by TestWriteVTimezoneICALJS, with the same input as
// vtimezone_check.py. Writes a JSON list with, for each wall time, a list
// holding the one Unix time ical.js maps it to. ical.js always picks one
// instant, even in a gap or an overlap.
"use strict";

const ICAL = require("ical.js");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const cal = new ICAL.Component(ICAL.parse(req.ics));
  const tz = new ICAL.Timezone(cal.getFirstSubcomponent("vtimezone"));
  const out = req.walls.map((w) => {
    const t = new ICAL.Time({
      year: w[0], month: w[1], day: w[2],
      hour: w[3], minute: w[4], second: w[5],
      isDate: false,
    }, tz);
    return [t.toUnixTime()];
  });
  process.stdout.write(JSON.stringify(out));
});
