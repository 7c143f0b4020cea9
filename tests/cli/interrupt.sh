#!/bin/sh
# Interruption: infokv-capture and infokv-sim killed with SIGINT, SIGTERM
# and SIGKILL at random moments, in a loop of trials.
#   after SIGINT/SIGTERM  capture: the final name holds a valid trace (with
#                         complete=0 if the run was cut short, 1 if it had
#                         finished) or, if the signal came before the
#                         output was started, the previous output; no
#                         temporary file is left.
#                         sim: the folder holds the previous run's tables
#                         or this run's, complete, never a mix; no
#                         temporary file is left.
#   after SIGKILL         the final name holds the previous output,
#                         byte for byte, or a complete new one (capture:
#                         a valid trace with complete=1; sim: tables
#                         equal to an uninterrupted run's). Temporary
#                         files may remain (*.tmp-PID): they never look
#                         finished.
# Each trial is one test. IKV_TRIALS sets the number of trials (default 6:
# `make check` stays fast; `make check-interrupt` or IKV_TRIALS=60 for the
# long run), IKV_SEED the random seed (printed, for replaying a failure).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/cli/lib.sh"
capture="$top_builddir/infokv-capture"
sim="$top_builddir/infokv-sim"
inspect="$top_builddir/infokv-inspect"
fixtures="$top_srcdir/tests/fuzz/corpus"
T=$IKV_TMP
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
trials=${IKV_TRIALS:-6}
seed=${IKV_SEED:-$(od -An -tu2 -N2 /dev/urandom | tr -d ' ')}
echo "trials $trials, seed $seed (IKV_SEED=$seed to replay)"

# A model slow enough to be caught mid-run (a second or so): the
# stories260K shape with random weights, and the fixture tokenizer.
both="$fixtures/llama2c/seed-model-with-tokenizer"
[ -f "$both" ] || skip_all "fuzz corpus missing"
ckpt_len=$(od -An -tu4 -j1 -N4 "$both" | tr -d ' ')
tail -c +$((6 + ckpt_len)) "$both" >"$T/tok.bin"
n_vocab=268
"$PY" - "$T/model.bin" "$n_vocab" <<'EOF' || skip_all "cannot write the model"
import array, struct, sys
path, vocab = sys.argv[1], int(sys.argv[2])
dim, hidden, layers, heads, kv_heads, seq = 64, 172, 5, 8, 4, 1024
hs = dim // heads
n = (vocab * dim + layers * dim * 2 + layers * dim * dim * 2 + layers * dim * kv_heads * hs * 2
     + layers * dim * hidden * 3 + dim + seq * hs)
w = array.array('f', [0.0]) * n
x = 12345
for i in range(n):
    x = (x * 1103515245 + 12345) & 0x7fffffff
    w[i] = (x / 0x7fffffff - 0.5) * 0.2
with open(path, 'wb') as f:
    f.write(struct.pack('<7i', dim, hidden, layers, heads, kv_heads, vocab, seq))
    w.tofile(f)
EOF

cap_args="-q -m $T/model.bin -z $T/tok.bin -p Once -t 0 -n 300"
sim_args="-q --no-plots -P full,h2o,tova -b 16 -s decode --fi-tokens 2 --fi-queries 8"

# References: an uninterrupted run of each, timed, and a previous output
# that every trial starts from (made with other settings, so that old and
# new outputs differ).
now() { date +%s.%N; }
t0=$(now)
"$capture" $cap_args -o "$T/ref.h5" >/dev/null 2>&1 || skip_all "reference capture failed"
t1=$(now)
"$capture" -q -m "$T/model.bin" -z "$T/tok.bin" -p Twice -t 0 -n 50 -o "$T/prev.h5" >/dev/null 2>&1
"$sim" $sim_args -o "$T/ref-out" "$T/ref.h5" >/dev/null 2>&1 || skip_all "reference simulation failed"
t2=$(now)
"$sim" -q --no-plots -P h2o -b 8 -o "$T/prev-out" "$T/ref.h5" >/dev/null 2>&1
# once more each, warm (the first runs pay for cold caches)
t3=$(now)
"$capture" $cap_args -o "$T/warm.h5" >/dev/null 2>&1
t4=$(now)
"$sim" $sim_args -o "$T/warm-out" "$T/ref.h5" >/dev/null 2>&1
t5=$(now)
cap_time=$(echo "$t0 $t1 $t3 $t4" | awk '{a = $2 - $1; b = $4 - $3; print a < b ? a : b}')
sim_time=$(echo "$t1 $t2 $t4 $t5" | awk '{a = $2 - $1; b = $4 - $3; print a < b ? a : b}')
echo "uninterrupted: capture ${cap_time}s, simulation ${sim_time}s (runs: $(echo "$t0 $t1 $t2 $t3 $t4 $t5" | awk '{printf "%.2f %.2f %.2f %.2f", $2 - $1, $3 - $2, $5 - $4, $6 - $5}'))"
tables="traces.tsv sequence.tsv influence.tsv per_step.tsv per_layer.tsv summary.tsv"

# A shell starts background commands with SIGINT ignored; a terminal's
# Ctrl-C is not, so restore the default action for the programs.
dflt=""
env --default-signal=INT true 2>/dev/null && dflt="env --default-signal=INT"

# Uniform random numbers from the seed: delay I N -> a delay in [0, N].
# (awk's srand wants a seed below 2^31)
# The I-th number of the seed's sequence.
rand() { awk -v s="$seed" -v i="$1" -v n="$2" 'BEGIN { srand(s); for (k = 0; k <= i; k++) r = rand(); printf "%.3f", r * n }'; }

# complete attribute of a trace, or "bad" when it is not a valid trace
trace_state() {
    "$inspect" "$1" >"$T/insp.out" 2>/dev/null || { echo bad; return; }
    if grep -q "^positions .*, complete$" "$T/insp.out"; then echo 1
    elif grep -q "INCOMPLETE" "$T/insp.out"; then echo 0
    else echo bad; fi
}

same_tables() { # DIR REFDIR: every table equal (the traces table names the path: skip its path column)
    for t in $tables; do
        if [ "$t" = traces.tsv ]; then
            cut -f1,3- "$1/$t" >"$T/a.tsv" 2>/dev/null && cut -f1,3- "$2/$t" >"$T/b.tsv" &&
                cmp -s "$T/a.tsv" "$T/b.tsv" || return 1
        else
            cmp -s "$1/$t" "$2/$t" || return 1
        fi
    done
}

stats_int=0; stats_term=0; stats_kill=0; stats_partial=0; stats_done=0; stats_early=0; stats_tmp=0
i=0
while [ "$i" -lt "$trials" ]; do
    case $((i % 3)) in 0) sig=INT ;; 1) sig=TERM ;; 2) sig=KILL ;; esac
    if [ $((i / 3 % 2)) -eq 0 ]; then what=capture; else what=sim; fi
    trial="trial $i: $what, SIG$sig"
    rm -rf "$T/run"; mkdir -p "$T/run"
    if [ "$what" = capture ]; then
        cp "$T/prev.h5" "$T/run/t.h5"
        delay=$(rand "$i" "$cap_time")
        $dflt "$capture" $cap_args -o "$T/run/t.h5" >/dev/null 2>"$T/run.err" &
    else
        cp -r "$T/prev-out" "$T/run/out"
        delay=$(rand "$i" "$sim_time")
        $dflt "$sim" $sim_args -o "$T/run/out" "$T/ref.h5" >/dev/null 2>"$T/run.err" &
    fi
    pid=$!
    sleep "$delay"
    kill -s "$sig" "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    why=""
    leftovers=$(find "$T/run" -name '*.tmp-*' | wc -l)
    if [ "$what" = capture ]; then
        if cmp -s "$T/run/t.h5" "$T/prev.h5"; then
            state=prev; stats_early=$((stats_early + 1))
        elif [ -e "$T/run/t.h5" ]; then
            state=$(trace_state "$T/run/t.h5")
        else
            state=none
        fi
        case "$sig:$state" in
            KILL:prev) ;;
            KILL:1) ;;
            KILL:*) why="after SIGKILL the final name holds '$state'" ;;
            *:prev) ;;
            *:0) stats_partial=$((stats_partial + 1))
                 [ "$status" -eq 1 ] || why="an interrupted capture exited $status, not 1" ;;
            *:1) stats_done=$((stats_done + 1)) ;;
            *) why="after SIG$sig the final name holds '$state'" ;;
        esac
    else
        if [ -e "$T/run/out/summary.tsv" ]; then
            if same_tables "$T/run/out" "$T/prev-out"; then state=prev; stats_early=$((stats_early + 1))
            elif same_tables "$T/run/out" "$T/ref-out"; then state=new; stats_done=$((stats_done + 1))
            else state=mixed; fi
        else
            state=none
        fi
        [ "$state" = mixed ] && why="the folder mixes two runs' tables"
        [ "$state" = none ] && [ "$sig" != KILL ] &&
            why="after SIG$sig the previous run's tables are gone"
    fi
    if [ "$sig" != KILL ] && [ "$leftovers" -gt 0 ]; then
        why="$why; $leftovers temporary files left after SIG$sig"
    fi
    [ "$sig" = KILL ] && stats_tmp=$((stats_tmp + leftovers))
    case $sig in INT) stats_int=$((stats_int + 1)) ;; TERM) stats_term=$((stats_term + 1)) ;;
                 KILL) stats_kill=$((stats_kill + 1)) ;; esac
    if [ -z "$why" ]; then
        pass "$trial after ${delay}s: exit $status, output $state"
    else
        echo "  $why (exit $status); stderr:"; sed 's/^/    /' "$T/run.err" | head -5
        fail "$trial after ${delay}s"
    fi
    i=$((i + 1))
done
echo "signals: $stats_int SIGINT, $stats_term SIGTERM, $stats_kill SIGKILL;" \
     "outputs: $stats_partial cut short (complete=0), $stats_done finished," \
     "$stats_early previous kept; $stats_tmp temporaries left by SIGKILL"
finish
