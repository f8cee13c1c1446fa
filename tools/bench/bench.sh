#!/usr/bin/env bash
# Benchmarks vaultfs beside restic on the same data. Manual: CI never runs it.
#
#   tools/bench/bench.sh [DATA]
#
# DATA is a directory made by make-dataset.sh (built first if missing). For
# each of ROUNDS interleaved rounds (the tool order rotates), each tool runs
# one suite on a fresh repository and a fresh copy of DATA/mixed:
#
#   init      create the repository
#   backup1   first backup of the copy
#   backup2   backup after make-dataset.sh --mutate changed the copy
#   backup3   backup again, nothing changed
#   restore   restore latest into an empty directory (verified against sha256)
#   small     backup of DATA/many-small into a second repository
#
# Each step runs under /usr/bin/time -f '%e %U %S %M' right after its input
# was read twice (this host evicts idle page cache within minutes). Prints a
# table of medians -- wall s, MB/s (input bytes / wall), CPU s (user + sys),
# peak RSS MiB, repository MB -- with the vaultfs/restic ratio (median of
# same-round ratios), and writes raw.csv, summary.csv and summary.txt.
#
# Environment:
#   ROUNDS=3  TOOLS="vaultfs restic"  STEPS="init backup1 backup2 backup3 restore small"
#     (init always runs, and so do the steps a chosen step builds on)
#   BENCH=${TMPDIR:-/tmp}/vaultfs-bench  WORK=$BENCH/scratch  OUTDIR=$BENCH/results/<time>
#   VAULTFS_BIN=<repo>/target/release/vaultfs  RESTIC_BIN=restic  SCALE (see make-dataset.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-3}
TOOLS=${TOOLS:-"vaultfs restic"}
STEPS=${STEPS:-"init backup1 backup2 backup3 restore small"}
SCALE=${SCALE:-1}
BENCH=${BENCH:-${TMPDIR:-/tmp}/vaultfs-bench}
if [ "$SCALE" = 1 ]; then default_data=$BENCH/data; else default_data=$BENCH/data-scale$SCALE; fi
DATA=${1:-$default_data}
WORK=${WORK:-$BENCH/scratch}
OUTDIR=${OUTDIR:-$BENCH/results/$(date +%Y%m%d-%H%M%S)}
VAULTFS_BIN=${VAULTFS_BIN:-$top/target/release/vaultfs}
RESTIC_BIN=${RESTIC_BIN:-restic}
PY=${PYTHON:-python3}

die() {
    echo "bench.sh: $*" >&2
    exit 1
}

if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq time >/dev/null || die "cannot install GNU time"
    else
        die "/usr/bin/time (GNU time) is required: apt-get install time"
    fi
fi
command -v "$PY" >/dev/null || die "python3 is required"
for tool in $TOOLS; do
    case $tool in
    vaultfs) [ -x "$VAULTFS_BIN" ] || die "no $VAULTFS_BIN: run cargo build --release -p vaultfs-cli" ;;
    restic) command -v "$RESTIC_BIN" >/dev/null || die "no restic: apt-get install restic" ;;
    *) die "unknown tool $tool (known: vaultfs restic)" ;;
    esac
done

if [ ! -d "$DATA/mixed" ]; then
    echo "bench.sh: building the dataset in $DATA" >&2
    SCALE=$SCALE "$here/make-dataset.sh" "$DATA"
fi
DATA=$(cd "$DATA" && pwd)
mkdir -p "$WORK" "$OUTDIR"
WORK=$(cd "$WORK" && pwd)
OUTDIR=$(cd "$OUTDIR" && pwd)
pwfile=$WORK/password
printf 'bench password\n' >"$pwfile"
raw=$OUTDIR/raw.csv
echo "round,tool,step,wall_s,user_s,sys_s,max_rss_kib,input_bytes,repo_bytes,exit,verify,load1" >"$raw"

# tool_cmd TOOL REPO ARGS...: sets cmd to the command line running TOOL on
# the repository REPO (through env, so /usr/bin/time can exec it).
tool_cmd() {
    local tool=$1 repo=$2
    shift 2
    case $tool in
    vaultfs) cmd=(env "VAULTFS_PASSWORD_FILE=$pwfile" "$VAULTFS_BIN" -r "$repo" "$@") ;;
    restic) cmd=(env "RESTIC_PASSWORD_FILE=$pwfile" "$RESTIC_BIN" -r "$repo" --cache-dir "$WORK/$tool/cache" "$@") ;;
    esac
}

# init_repo TOOL REPO: sets cmd to the init command.
init_repo() {
    case $1 in
    vaultfs) tool_cmd "$1" "$2" init ;;
    restic) tool_cmd "$1" "$2" init --repository-version 2 ;;
    esac
}

warm() {
    local i
    for i in 1 2; do
        find "$@" -type f -print0 | xargs -0 -r cat >/dev/null
    done
}

bytes_of() {
    find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }'
}

# timed ROUND TOOL STEP: runs "${cmd[@]}" under GNU time; sets t_wall,
# t_user, t_sys, t_rss and t_status.
timed() {
    local round=$1 tool=$2 step=$3
    local tf=$WORK/$tool/time.txt log=$OUTDIR/logs/$round-$tool-$step.log
    mkdir -p "$OUTDIR/logs"
    t_status=0
    /usr/bin/time -f '%e %U %S %M' -o "$tf" "${cmd[@]}" >"$log" 2>&1 || t_status=$?
    read -r t_wall t_user t_sys t_rss < <(tail -n 1 "$tf")
    if [ "$t_status" != 0 ]; then
        echo "bench.sh: round $round $tool $step exited $t_status; log tail:" >&2
        tail -n 20 "$log" >&2
    fi
    printf '  %-8s %-8s %8ss  exit %s\n' "$tool" "$step" "$t_wall" "$t_status" >&2
}

# record ROUND TOOL STEP INPUT_BYTES REPO [VERIFY]: appends the last timed step.
record() {
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$3" "$t_wall" "$t_user" "$t_sys" \
        "$t_rss" "$4" "$(bytes_of "$5")" "$t_status" "${6:-}" "$load1" >>"$raw"
}

has_step() {
    local s
    for s in "$@"; do
        case " $STEPS " in *" $s "*) return 0 ;; esac
    done
    return 1
}

suite() {
    local round=$1 tool=$2
    local base=$WORK/$tool
    local repo=$base/repo live=$base/live target=$base/restore small_repo=$base/repo-small
    rm -rf "$base"
    mkdir -p "$base"
    load1=$(cut -d' ' -f1 /proc/loadavg)
    cp -a --sparse=always "$DATA/mixed" "$live"
    local bytes
    bytes=$(bytes_of "$live")

    init_repo "$tool" "$repo"
    timed "$round" "$tool" init
    record "$round" "$tool" init 0 "$repo"
    if has_step backup1 backup2 backup3 restore; then
        warm "$live"
        tool_cmd "$tool" "$repo" backup --host bench "$live"
        timed "$round" "$tool" backup1
        record "$round" "$tool" backup1 "$bytes" "$repo"
    fi
    if has_step backup2 backup3 restore; then
        "$here/make-dataset.sh" --mutate "$live" 2>/dev/null
        bytes=$(bytes_of "$live")
        warm "$live"
        tool_cmd "$tool" "$repo" backup --host bench "$live"
        timed "$round" "$tool" backup2
        record "$round" "$tool" backup2 "$bytes" "$repo"
    fi
    if has_step backup3; then
        warm "$live"
        tool_cmd "$tool" "$repo" backup --host bench "$live"
        timed "$round" "$tool" backup3
        record "$round" "$tool" backup3 "$bytes" "$repo"
    fi
    if has_step restore; then
        (cd "$live" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >"$base/live.sha256"
        warm "$repo"
        tool_cmd "$tool" "$repo" restore latest --target "$target"
        timed "$round" "$tool" restore
        # restic restores the absolute path below the target.
        local restored=$target$live verify=FAIL
        [ -d "$restored" ] || restored=$target
        if [ "$t_status" = 0 ] &&
            (cd "$restored" && sha256sum --quiet --strict -c "$base/live.sha256") >"$base/verify.txt" 2>&1; then
            verify=ok
        else
            echo "bench.sh: round $round $tool: the restore does not match the source:" >&2
            head -n 20 "$base/verify.txt" >&2 || true
        fi
        record "$round" "$tool" restore "$bytes" "$repo" "$verify"
    fi
    if has_step small; then
        init_repo "$tool" "$small_repo"
        "${cmd[@]}" >/dev/null 2>&1 || die "$tool: init of $small_repo failed"
        warm "$DATA/many-small"
        tool_cmd "$tool" "$small_repo" backup --host bench "$DATA/many-small"
        timed "$round" "$tool" small
        record "$round" "$tool" small "$(bytes_of "$DATA/many-small")" "$small_repo"
    fi
    rm -rf "$base"
}

read -r -a tools <<<"$TOOLS"
n=${#tools[@]}
echo "bench.sh: $ROUNDS round(s) of [$TOOLS] on $DATA; results in $OUTDIR" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
        tool=${tools[$(((i + round - 1) % n))]}
        echo "round $round: $tool" >&2
        suite "$round" "$tool"
    done
done

"$PY" "$here/summarize.py" "$raw" "$OUTDIR"
