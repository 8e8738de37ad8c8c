#!/bin/sh
# Bucketplace's export script, run from the repository as it was with git-sync. Values come in
# through the environment (DS), never pasted into the command. The last line is the XCom.
set -eu
: "${DS:?DS is the day to export}"
echo "exporting events for $DS from $(basename "$UPDRAFT_BUNDLE")" >&2
printf '{"day": "%s", "tables": {"events": 3, "sessions": 2}}\n' "$DS"
