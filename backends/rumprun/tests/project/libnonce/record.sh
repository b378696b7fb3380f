#!/bin/sh
# Appends the command line it is given to build.record, then runs it.
echo "$*" >> build.record
exec "$@"
