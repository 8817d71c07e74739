#!/bin/sh
# Makes systemd see the installed or upgraded unit; restarts calhook on
# upgrade if it was running. A fresh install leaves it stopped until the
# operator has looked at /etc/calhook/calhook.env.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl try-restart calhook.service >/dev/null 2>&1 || true
fi
