# bench/lib.sh - what the bench/run_*.sh scripts share. Sourced; the script
# sets HERE (bench/), ROOT, BUILD (absolute), RUNS, STAMP and die() first.

# Configures $BUILD (Release) when it has no cache yet, then builds the
# given targets.
bench_build() {
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$BUILD" -j "$(nproc)" --target "$@" >/dev/null ||
    die "Troupe build failed (run: cmake --build $BUILD)"
}

# Compiles the Erlang peer bench/peers/erlang/$1.erl into the build tree.
bench_erlc() {
  command -v erl >/dev/null && command -v erlc >/dev/null ||
    die "erl/erlc not found: install Erlang/OTP (apt-get install erlang-nox) or use --peers none"
  mkdir -p "$BUILD/bench/peers/erlang"
  erlc -o "$BUILD/bench/peers/erlang" "$HERE/peers/erlang/$1.erl" ||
    die "erlc failed"
}

# The header of a results file: title, date, runs, host, the Troupe commit
# (+ $2, e.g. ", 2 schedulers"), then the version of each peer named
# after it (erlang, go, node) that is installed.
bench_header() { # title troupe-note [peer...]
  local title=$1 note=$2
  shift 2
  echo "# $title, $STAMP, $RUNS runs each (medians)"
  echo "# host: $(uname -srm), $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "# troupe: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')$note"
  for p in "$@"; do
    case $p in
      erlang) command -v erl >/dev/null && echo "# erlang: OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().'), erl +S 2:2" ;;
      go) command -v go >/dev/null && echo "# go: $(go version | awk '{print $3}'), GOMAXPROCS=2" ;;
      node) command -v node >/dev/null && echo "# node: $(node --version)" ;;
    esac
  done
  return 0
}

# Writes $OUT: the header saved in $OUT.head, the table (the script's
# table function), then the raw lines of $RAW under "# raw: $1"; prints
# the table and where the file is.
bench_save() { # raw-columns
  {
    cat "$OUT.head"
    echo
    table
    echo
    echo "# raw: $1"
    cat "$RAW"
  } >"$OUT"
  rm -f "$OUT.head"
  echo
  table
  echo
  echo "raw results: $OUT ($(($(date +%s) - START)) s)"
}
