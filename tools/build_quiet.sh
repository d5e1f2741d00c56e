# Sourced by the set-up scripts: a build that prints only what matters (warnings, errors)
# and fails when the build fails.
quiet_build() {
  local log
  log=$(mktemp)
  if ! cmake --build "$1" -j"$(nproc)" >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    echo "strata: build in $1 failed" >&2
    return 1
  fi
  grep -vE '^\[[0-9]+/[0-9]+\] |^ninja: no work to do' "$log" || true
  rm -f "$log"
}
