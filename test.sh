#!/usr/bin/env bash
# The whole test suite: unit, fuzz, integration and end-to-end tests of every module.
# Installs what it needs first (JDK, Maven through the wrapper). Extra Maven arguments pass through.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
bin/ensure-deps
exec ./mvnw -B -ntp verify "$@"
