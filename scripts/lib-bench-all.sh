# Sourced by scripts/bench for `scripts/bench all [--quick]`: every benchmark area in one run on
# one PostgreSQL and Redis, the physical limits of the same servers beside them (redis-benchmark,
# psql \copy, bare SQL), and the whole output written to docs/bench/all.md (then merged into
# docs/BENCHMARKS.md by scripts/merge-bench-docs). Expects the services and SLUICE_BIN_DIR.

bench_all() {
  local quick=0
  for arg in "$@"; do
    case "$arg" in
      --quick) quick=1 ;;
      *) echo "scripts/bench all: unknown option $arg (only --quick; SLUICE_BENCH_STEPS picks steps)" >&2; return 2 ;;
    esac
  done
  local out="docs/bench/all.md" raw
  raw=$(mktemp)
  local started; started=$(date -u +"%Y-%m-%d %H:%M UTC")
  local steps
  if ((quick)); then
    steps=(
      "postgres" "redis" "http" "providers" "mock"
      "queue --jobs 20000 --seconds 5 --processes 2 --concurrency 512"
      "queue --only sustained --minutes 2" "queue --only burst"
      "queue --only history --history-jobs 1000000 --history-queued 100000" "queue --only retention --minutes 2 --plot-directory none"
      "limits --seconds 60 --jobs 20000" "webhooks" "inflight"
    )
  else
    steps=(
      "postgres" "redis" "http" "providers" "mock"
      "queue" "queue --only sustained --minutes 10" "queue --only burst"
      "queue --only history" "queue --only retention --minutes 10"
      "limits" "webhooks" "inflight"
    )
  fi
  # SLUICE_BENCH_STEPS="redis;queue --only bare" runs only those steps (still with the physical limits).
  if [ -n "${SLUICE_BENCH_STEPS:-}" ]; then IFS=';' read -r -a steps <<<"$SLUICE_BENCH_STEPS"; fi
  {
    echo "# Full run (\`scripts/bench all$( ((quick)) && echo " --quick")\`)"
    echo
    echo "**Started:** $started. **Machine:** $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')),"
    echo "$(free -g | awk '/Mem:/{print $2}') GiB; $(. /etc/os-release; echo "$PRETTY_NAME"); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (fsync=on);"
    echo "Redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'); $(swift --version 2>/dev/null | head -n 1). Every area ran in this one"
    echo "invocation against the same servers; the physical limits below were measured on them too."
    echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "## Physical limits of this machine's servers"
    echo
    echo '```text'
    echo "\$ redis-benchmark -q -n 200000 -t set,get (1 connection per client, 50 clients)"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -n 200000 -t set,get 2>&1 | tr '\r' '\n' | grep -E "requests per second" | tail -n 2
    echo "\$ redis-benchmark -q -n 200000 -P 16 -t set,get (pipelined)"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -n 200000 -P 16 -t set,get 2>&1 | tr '\r' '\n' | grep -E "requests per second" | tail -n 2
    echo "\$ redis-benchmark -q -n 100000 EVAL (a 3-line Lua script: HMGET, HSET, PEXPIRE on one key)"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -n 100000 \
      eval "local v = redis.call('HMGET', KEYS[1], 't', 'ts'); redis.call('HSET', KEYS[1], 't', 1, 'ts', 2); return redis.call('PEXPIRE', KEYS[1], 60000)" 1 bench:key \
      2>&1 | tr '\r' '\n' | grep -E "requests per second" | tail -n 1 | sed -E 's/^eval .*: ([0-9.]+ requests)/EVAL: \1/' 
    local psql=(env PGOPTIONS="-c client_min_messages=warning" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
    "${psql[@]}" -c "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (id bigint PRIMARY KEY, tenant text, payload jsonb)" >/dev/null
    python3 -c 'import sys
for i in range(1000000): sys.stdout.write("%d\tt%d\t{\"messages\":[{\"role\":\"user\",\"content\":\"job %d\"}]}\n" % (i, i % 10, i))' > "$raw.copy"
    local t0 t1
    t0=$(date +%s.%N)
    "${psql[@]}" -c "\\copy bench_copy FROM '$raw.copy'" >/dev/null
    t1=$(date +%s.%N)
    echo "\$ psql \\copy of 1,000,000 rows (bigint primary key, text, jsonb; fsync on)"
    python3 -c "print('%.0f rows/s (%.2f s)' % (1e6 / ($t1 - $t0), $t1 - $t0))"
    t0=$(date +%s.%N)
    "${psql[@]}" -c "UPDATE bench_copy SET tenant = tenant || 'x'" >/dev/null
    t1=$(date +%s.%N)
    echo "\$ one UPDATE of all 1,000,000 rows (one statement)"
    python3 -c "print('%.0f rows/s (%.2f s)' % (1e6 / ($t1 - $t0), $t1 - $t0))"
    "${psql[@]}" -c "DROP TABLE bench_copy" >/dev/null
    rm -f "$raw.copy"
    echo '```'
    echo
    echo "The queue area's \`bare\` line is the bare-SQL limit of the claim (SKIP LOCKED + UPDATE of"
    echo "1,000 rows per statement) on the same database, beside the worker's end-to-end figures."
    for step in "${steps[@]}"; do
      echo
      echo "## \`scripts/bench $step\`"
      echo
      echo '```text'
      local s0 s1
      s0=$(date +%s)
      # shellcheck disable=SC2086
      "$SLUICE_BIN_DIR/sluice-bench" $step 2>&1 | grep -v -E "^warning: |^\s*/.*CMakeLists.txt$" || echo "(this area failed; output above)"
      s1=$(date +%s)
      echo '```'
      echo
      echo "($((s1 - s0)) s)"
    done
    echo
    echo "Finished $(date -u +"%Y-%m-%d %H:%M UTC")."
  } | tee "$raw"
  mv "$raw" "$out"
  scripts/merge-bench-docs
}
