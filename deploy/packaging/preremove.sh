#!/bin/sh
# Stops calhook before its package is removed. The database in
# /var/lib/calhook (a DynamicUser state directory) is left in place.
set -e
if [ -d /run/systemd/system ]; then
	systemctl stop calhook.service >/dev/null 2>&1 || true
fi
