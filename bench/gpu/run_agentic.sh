#!/usr/bin/env bash
# On the GPU machine: the agentic suite at k=5 under both harnesses (issue 14's measured tables), one brain at a time.
# The runs go on in the background (setsid) so the next model's parts can travel while the GPU works; the two
# harnesses run at once, each with its own server.
#   bash bench/gpu/run_agentic.sh part FILE...     # stash carried model parts (.gpu/m/s00 .. .gpu/m/m18)
#   bash bench/gpu/run_agentic.sh start BRAIN      # assemble + verify BRAIN, start its two runs in the background
#   bash bench/gpu/run_agentic.sh collect          # wait for every started run, then reports + tarball into $OUT
# Knobs: K (trials, default 5), C (concurrency = server slots, default 32), LIMIT (--limit-per-pack, default none),
# HARNESSES (default "minimal agent"), BIN (llama-server folder, default /tmp/bbgpu/bin).
set -uo pipefail
W=/tmp/bbgpu
PY=${PY:-python3}
export PYTHONPATH="$W/site:$PWD/src" PYTHONUNBUFFERED=1
export BRAINBENCH_CACHE="$W/cache" BRAINBENCH_LLAMA_BIN_DIR="${BIN:-$W/bin}"
mkdir -p "$W/model" "$W/cache/models" "$W/runs"
declare -A SUMS=([brain-small]=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
                 [brain-medium]=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046)
declare -A PREFIX=([brain-small]=s [brain-medium]=m)

case "${1:-}" in
part)
  shift; for p in "$@"; do cp "$p" "$W/model/"; done; ls "$W/model" | tr '\n' ' '; echo ;;
start)
  B=$2; M="$W/cache/models/$B.gguf"; pkill -f "src-$B"; pkill -f -- "--brain $B "; pkill -f "models/$B.gguf"; sleep 1
  [ -f "$M" ] || cat "$W/model/${PREFIX[$B]}"?? > "$M"
  SUM=$(sha256sum "$M" | cut -d' ' -f1)
  [ "$SUM" = "${SUMS[$B]}" ] || { echo "$B sha256 mismatch: $SUM"; rm -f "$M"; exit 1; }
  echo "$SUM" > "$W/cache/models/$B.sha256"
  rm -rf "$W/model/${PREFIX[$B]}"?? "$W/runs/$B.done" "$W/runs/$B"-*
  # The script's own copy: the next call's working tree replaces this one.
  rm -rf "$W/src-$B"; cp -r "$PWD/src" "$W/src-$B"
  setsid bash -c "
    export PYTHONPATH='$W/site:$W/src-$B'
    for H in ${HARNESSES:-minimal agent}; do (
      SECONDS=0
      $PY -m brainbench run --suite agentic --brain $B --server-arg '-ngl 99' -k ${K:-5} -c ${C:-32} --harness \$H \
        ${LIMIT:+--limit-per-pack $LIMIT} -o $W/runs/$B-\$H --json > $W/runs/$B-\$H.json 2> $W/runs/$B-\$H.log
      echo \"exit \$? in \${SECONDS}s\" >> $W/runs/$B-\$H.log ) &
    done
    wait
    touch $W/runs/$B.done" < /dev/null > "$W/runs/$B.bg.log" 2>&1 &
  echo "started $B"; nvidia-smi --query-gpu=name,memory.used --format=csv,noheader ;;
collect)
  for d in "$W"/runs/*.bg.log; do
    B=$(basename "$d" .bg.log)
    for _ in $(seq 1 "${WAIT_S:-540}"); do [ -f "$W/runs/$B.done" ] && break; sleep 1; done
    [ -f "$W/runs/$B.done" ] || echo "$B: still running"
  done
  for f in "$W"/runs/*.log; do echo "== $f"; tail -3 "$f"; done
  for d in "$W"/runs/*/; do
    N=$(basename "$d"); PYTHONPATH="$W/site:$W/src-${N%-*}" timeout 60 $PY -m brainbench report "$d" --md "$OUT/$N.md" \
      > "$OUT/$N.txt" 2>&1 || echo "report $N failed"
  done
  for B in brain-small brain-medium; do
    ls -d "$W/runs/$B"-*/ >/dev/null 2>&1 && (cd "$W/runs" && tar -cJf "$OUT/runs-$B.tar.xz" "$B"-*)
  done
  ls -la "$OUT" ;;
status)
  for f in "$W"/runs/*.log; do echo "== $f"; tail -2 "$f"; done
  ls "$W/runs"; for d in "$W"/runs/*/; do [ -f "$d/brainbench.sqlite" ] && \
    echo "$d $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from attempts').fetchone()[0])" "$d/brainbench.sqlite" 2>&1)"; done ;;
*) echo "usage: run_agentic.sh part FILE... | start BRAIN | collect | status"; exit 2 ;;
esac
