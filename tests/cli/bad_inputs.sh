#!/bin/sh
# Bad inputs and hostile environments, one row each: the table of
# README.md (section Errors). Every row runs one program and passes only if it
# exits with the expected status, prints exactly one line on stderr
# matching the expected message, and (for rows that write) leaves nothing
# that looks complete: no final file, no temporary, no summary table.
#
# With IKV_TABLE=FILE the rows are also appended to FILE as Markdown
# table lines with the exact message (temporary paths shortened to DIR/):
# that is how the table in README.md (section Errors) is made.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/cli/lib.sh"
capture="$top_builddir/infokv-capture"
sim="$top_builddir/infokv-sim"
inspect="$top_builddir/infokv-inspect"
make_trace="$top_builddir/tests/unit/make_trace"
fixtures="$top_srcdir/tests/fuzz/corpus"
T=$IKV_TMP
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# row NAME STATUS PATTERN [--absent PATH]... -- COMMAND...
#   one test: exit STATUS, one stderr line matching PATTERN (grep -E), and
#   none of the --absent paths (nor PATH.tmp-*) exists afterwards.
row() {
    name=$1; want=$2; pattern=$3; shift 3
    absent=""
    while [ "$1" = "--absent" ]; do absent="$absent $2"; shift 2; done
    [ "$1" = "--" ] && shift
    "$@" >"$T/row.out" 2>"$T/row.err"
    got=$?
    lines=$(wc -l <"$T/row.err")
    why=""
    [ "$got" -eq "$want" ] || why="exit $got, wanted $want"
    [ "$lines" -eq 1 ] || why="$why; $lines lines on stderr"
    grep -Eq -- "$pattern" "$T/row.err" || why="$why; no match for '$pattern'"
    for p in $absent; do
        [ -e "$p" ] && why="$why; $p was left behind"
        for tmp in "$p".tmp-*; do
            [ -e "$tmp" ] && why="$why; $tmp was left behind"
        done
    done
    if [ -z "$why" ]; then
        pass "$name"
    else
        echo "  $why; stderr:"; sed 's/^/    /' "$T/row.err" | head -5
        fail "$name"
    fi
    if [ -n "${IKV_TABLE:-}" ]; then
        msg=$(head -1 "$T/row.err" | sed "s|$T/|DIR/|g; s/\\.tmp-[0-9]*/.tmp-PID/g; s/|/\\\\|/g")
        prog=$(basename "$1")
        [ "$prog" = sh ] && prog="$(echo "$3" | grep -o 'infokv-[a-z]*' | head -1) under ulimit -f"
        printf '| %s | `%s` | %s | `%s` |\n' "$name" "$prog" "$got" "$msg" >>"$IKV_TABLE"
    fi
}

# ---- fixtures: tiny valid files from the fuzz corpora ----
gguf="$T/model.gguf"
cp "$fixtures/gguf/seed-llama-spm-tokenizer" "$gguf" || skip_all "fuzz corpus missing"
# A checkpoint and its tokenizer: the harness input is a mode byte, the
# checkpoint's length (4 bytes), the checkpoint, the tokenizer.
both="$fixtures/llama2c/seed-model-with-tokenizer"
ckpt_len=$(od -An -tu4 -j1 -N4 "$both" | tr -d ' ')
ckpt="$T/model.bin"
tail -c +6 "$both" | head -c "$ckpt_len" >"$ckpt"
tok="$T/tokenizer.bin"
tail -c +$((6 + ckpt_len)) "$both" >"$tok"
check "fixture: the GGUF model runs" "$capture" -q -m "$gguf" -p hi -n 4 -t 0
check "fixture: the llama2.c model runs" "$capture" -q -m "$ckpt" -z "$tok" -p hi -n 4 -t 0

# GGUF edits: a parser of the header, key/values and tensor infos finds
# the bytes to change (offset and type of the first tensor).
gguf_patch() { # IN OUT FIELD VALUE
    "$PY" - "$@" <<'EOF'
import struct, sys
src, dst, field, value = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b = bytearray(open(src, 'rb').read())
pos = 8
n_tensors, n_kv = struct.unpack_from('<QQ', b, pos); pos += 16
def skip_value(t, pos):
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t in sizes: return pos + sizes[t]
    if t == 8: return pos + 8 + struct.unpack_from('<Q', b, pos)[0]
    et, n = struct.unpack_from('<IQ', b, pos); pos += 12
    for _ in range(n): pos = skip_value(et, pos)
    return pos
for _ in range(n_kv):
    klen = struct.unpack_from('<Q', b, pos)[0]; pos += 8 + klen
    t = struct.unpack_from('<I', b, pos)[0]; pos += 4
    pos = skip_value(t, pos)
nlen = struct.unpack_from('<Q', b, pos)[0]; pos += 8 + nlen
n_dims = struct.unpack_from('<I', b, pos)[0]; pos += 4 + 8 * n_dims
if field == 'type': struct.pack_into('<I', b, pos, value)
if field == 'offset': struct.pack_into('<Q', b, pos + 4, value)
open(dst, 'wb').write(b)
EOF
}

# ---- model files (infokv-capture) ----
row "model: missing file" 2 "nope.gguf: No such file or directory" \
    -- "$capture" -q -m "$T/nope.gguf" -p hi
: >"$T/empty.gguf"
row "model: empty file" 2 "empty.gguf: not a GGUF file, and too small \(0 bytes\)" \
    -- "$capture" -q -m "$T/empty.gguf" -p hi
head -c 3000 "$gguf" >"$T/cut.gguf"
row "model: truncated GGUF" 2 "cut.gguf: (truncated|corrupt)" \
    -- "$capture" -q -m "$T/cut.gguf" -p hi
head -c 1000 "$ckpt" >"$T/cut.bin"
row "model: truncated llama2.c checkpoint" 2 "cut.bin: truncated llama2.c checkpoint: .* needs [0-9]+ bytes, the file has 1000" \
    -- "$capture" -q -m "$T/cut.bin" -p hi
printf 'GGML\003\000\000\000' >"$T/magic.bin"; head -c 200 /dev/zero >>"$T/magic.bin"
row "model: wrong magic" 2 "magic.bin: not a GGUF file, and not a llama2.c checkpoint: header dim = [0-9-]+ is out of range" \
    -- "$capture" -q -m "$T/magic.bin" -p hi
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\177\000\000\000\000\000\000\000\000' >"$T/count.gguf"
row "model: huge tensor count (GGUF)" 2 "count.gguf: corrupt: 9223372036854775807 tensors claimed, more than the file holds" \
    -- "$capture" -q -m "$T/count.gguf" -p hi
"$PY" -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<7i', 64, 172, 5, 8, 4, 4000000, 512) + bytes(4096))" >"$T/huge.bin"
row "model: huge vocabulary (llama2.c header)" 2 "huge.bin: truncated llama2.c checkpoint: header .*vocab 4000000\) needs [0-9]+ bytes, the file has 4124" \
    -- "$capture" -q -m "$T/huge.bin" -p hi
gguf_patch "$gguf" "$T/offset.gguf" offset 1073741824
row "model: tensor offset past the end" 2 "offset.gguf: truncated or corrupt: tensor '.*' \([0-9]+ bytes at data offset 1073741824\) ends past the end of the file" \
    -- "$capture" -q -m "$T/offset.gguf" -p hi
gguf_patch "$gguf" "$T/i8.gguf" type 24
row "model: unsupported tensor type" 2 "i8.gguf: tensor '.*' has type I8, not supported yet \(F32, F16, BF16 and Q8_0 are\)" \
    -- "$capture" -q -m "$T/i8.gguf" -p hi
row "model: tokenizer missing" 2 "nope.bin: cannot open: No such file or directory" \
    -- "$capture" -q -m "$ckpt" -z "$T/nope.bin" -p hi
head -c 500 "$tok" >"$T/cut-tok.bin"
row "model: tokenizer truncated" 2 "cut-tok.bin: truncated (at|in) token [0-9]+ of [0-9]+" \
    -- "$capture" -q -m "$ckpt" -z "$T/cut-tok.bin" -p hi

# ---- traces (infokv-sim; infokv-inspect for some) ----
trace="$T/synth.h5"
if "$make_trace" "$trace" --tokens 60 --prompt 40 --signals default >/dev/null 2>&1; then
    row "trace: missing file" 2 "nope.h5: No such file or directory" \
        -- "$sim" -q -o "$T/o-missing" "$T/nope.h5"
    : >"$T/empty.h5"
    row "trace: empty file" 2 "empty.h5: not an HDF5 file \(0 bytes\)" \
        --absent "$T/o-empty/summary.tsv" -- "$sim" -q -o "$T/o-empty" "$T/empty.h5"
    head -c 3000 "$trace" >"$T/cut.h5"
    row "trace: truncated" 2 "cut.h5: (cannot open as HDF5|not an HDF5 file)" \
        --absent "$T/o-cut/summary.tsv" -- "$sim" -q -o "$T/o-cut" "$T/cut.h5"
    row "trace: truncated (inspect)" 2 "cut.h5: (cannot open as HDF5|not an HDF5 file)" \
        -- "$inspect" "$T/cut.h5"
    printf 'GGUF, not HDF5\n' >"$T/magic.h5"
    row "trace: not HDF5" 2 "magic.h5: not an HDF5 file \(15 bytes\)" \
        --absent "$T/o-magic/summary.tsv" -- "$sim" -q -o "$T/o-magic" "$T/magic.h5"
    edit() { # COPY PYTHON-STATEMENTS (f is the open file)
        cp "$trace" "$1" &&
            "$PY" -c "import h5py; f = h5py.File('$1', 'r+'); $2; f.close()" 2>/dev/null
    }
    if "$PY" -c "import h5py" 2>/dev/null; then
        edit "$T/format.h5" "f.attrs['format'] = 'netcdf-like'"
        row "trace: another format" 2 "format.h5: not an infokv trace: format is 'netcdf-like', expected 'infokv-trace'" \
            -- "$sim" -q -o "$T/o-format" "$T/format.h5"
        edit "$T/version.h5" "f.attrs['version'] = 2"
        row "trace: another version" 2 "version.h5: unsupported trace version 2 \(this program reads version 1\)" \
            -- "$sim" -q -o "$T/o-version" "$T/version.h5"
        row "trace: another version (inspect)" 2 "version.h5: unsupported trace version 2" \
            -- "$inspect" "$T/version.h5"
        edit "$T/noqkv.h5" "del f['qkv']"
        row "trace: missing a dataset" 2 "noqkv.h5: the trace has no /qkv/q, /qkv/k, /qkv/v" \
            --absent "$T/o-noqkv/summary.tsv" -- "$sim" -q -o "$T/o-noqkv" "$T/noqkv.h5"
        edit "$T/notokens.h5" "del f['tokens']"
        row "trace: missing /tokens (inspect)" 2 "notokens.h5: the trace has no /tokens dataset" \
            -- "$inspect" "$T/notokens.h5"
        edit "$T/layers.h5" "f.attrs['n_layers'] = 2**31 - 1"
        row "trace: huge layer count" 2 "layers.h5: attribute n_layers = 2147483647 out of range" \
            -- "$sim" -q -o "$T/o-layers" "$T/layers.h5"
        edit "$T/past.h5" "f.attrs['n_tokens'] = 1000"
        row "trace: n_tokens past the datasets' end" 2 "past.h5: /tokens has shape \[60\], expected \[>=1000\]" \
            -- "$sim" -q -o "$T/o-past" "$T/past.h5"
    else
        echo "note: h5py absent, trace edit rows skipped"
    fi

    # ---- policies, parameters, budgets (infokv-sim) ----
    row "unknown policy" 2 "unknown policy 'lru'" \
        -- "$sim" -q -P h2o,lru -o "$T/o-pol" "$trace"
    row "unknown parameter" 2 "no listed policy has the parameter 'depth'" \
        -- "$sim" -q -P h2o --param depth=3 -o "$T/o-par" "$trace"
    row "parameter of another policy" 2 "--param h2o: no listed policy has the parameter 'window'" \
        -- "$sim" -q -P h2o,snapkv --param h2o.window=4 -o "$T/o-par2" "$trace"
    row "parameter value out of range" 2 "heavy: 2 is out of range \[0, 1\]" \
        -- "$sim" -q -P h2o --param heavy=2 -o "$T/o-par3" "$trace"
    row "budget not a number" 2 "budget: 'lots' is neither a count" \
        -- "$sim" -q -P h2o -b lots -o "$T/o-bud" "$trace"
    row "budget below a policy's window" 2 "budget 8 at layer 0 is below the observation window \(32\)" \
        --absent "$T/o-win/summary.tsv" -- "$sim" -q -P snapkv -b 8 -o "$T/o-win" "$trace"
    # Not an error: a budget above the sequence keeps everything (recall 1).
    "$sim" -q --no-plots -P h2o -b 1000 -o "$T/o-big" "$trace" >"$T/big.out" 2>"$T/big.err"
    big=$?
    check "budget larger than the sequence: runs (exit 0, nothing on stderr)" \
        test "$big" -eq 0 -a ! -s "$T/big.err"
    check "budget larger than the sequence: everything kept (recall 1, out_err 0)" \
        awk -F'\t' 'NR > 1 && $3 == "h2o" { found = 1; if ($6 != 1000 || $7 != 1 || $8 != 0) bad = 1 }
                    END { exit !(found && !bad) }' "$T/o-big/summary.tsv"
    if [ -n "${IKV_TABLE:-}" ]; then
        printf '| budget larger than the sequence | `infokv-sim` | 0 | (none: runs, budget_tokens 1000, recall 1, out_err 0, kept_frac 1) |\n' >>"$IKV_TABLE"
    fi
else
    echo "note: make_trace failed, trace and simulator rows skipped"
fi

# ---- outputs ----
: >"$T/afile"
row "output folder is a file (sim)" 2 "afile/out: cannot create: Not a directory" \
    -- "$sim" -q -o "$T/afile/out" "$trace"
row "output folder is a file (capture)" 2 "afile/t.h5: cannot create .*: Not a directory" \
    --absent "$T/afile/t.h5" -- "$capture" -q -m "$gguf" -p hi -n 4 -o "$T/afile/t.h5"

mkdir -p "$T/adir"
row "output is an existing folder (capture)" 2 "adir: is a folder; give a file name for the trace" \
    -- "$capture" -q -m "$gguf" -p hi -n 4 -o "$T/adir"

# Read-only and full file systems: a tmpfs we can mount (root) or, for
# read-only, a folder without write permission (other users).
mounted=""
cleanup_mounts() { for m in $mounted; do umount "$m" 2>/dev/null; done; }
trap 'cleanup_mounts; rm -rf "$IKV_TMP"' EXIT
mkdir -p "$T/ro" "$T/full"
if [ "$(id -u)" -eq 0 ]; then
    mount -t tmpfs -o size=1m,ro tmpfs "$T/ro" 2>/dev/null && mounted="$mounted $T/ro"
    mount -t tmpfs -o size=24k tmpfs "$T/full" 2>/dev/null && mounted="$mounted $T/full"
else
    chmod 555 "$T/ro"
fi
if [ "$(id -u)" -ne 0 ] || echo "$mounted" | grep -q "$T/ro"; then
    row "output folder not writable (sim)" 2 "ro/out: cannot create: (Read-only file system|Permission denied)" \
        -- "$sim" -q -o "$T/ro/out" "$trace"
    row "output folder not writable (capture)" 2 "ro/t.h5: cannot create .*: (Read-only file system|Permission denied)" \
        --absent "$T/ro/t.h5" -- "$capture" -q -m "$gguf" -p hi -n 4 -o "$T/ro/t.h5"
else
    echo "note: cannot make a read-only folder here (root without mount), rows skipped"
fi
if echo "$mounted" | grep -q "$T/full"; then
    # Fill the small tmpfs up to a few KiB, then write.
    head -c 20000 /dev/zero >"$T/full/filler" 2>/dev/null
    row "disk full (capture)" 1 "full/t.h5: .*No space left on device" \
        --absent "$T/full/t.h5" -- "$capture" -q -m "$gguf" -p "Once upon a time" -n 60 -t 0 -o "$T/full/t.h5"
    rm -f "$T/full/filler"; head -c 23000 /dev/zero >"$T/full/filler" 2>/dev/null
    row "disk full (sim)" 1 "No space left on device" \
        --absent "$T/full/out/summary.tsv" --absent "$T/full/out/traces.tsv" \
        -- "$sim" -q --no-plots -P h2o -b 8 -o "$T/full/out" "$trace"
else
    echo "note: no tmpfs (not root or mount refused): disk-full rows skipped"
fi
# The same through a file-size limit (ulimit -f, in 512-byte blocks).
row "file-size limit (capture)" 1 "lim.h5: .*File too large" \
    --absent "$T/lim.h5" -- sh -c "ulimit -f 16; exec '$capture' -q -m '$gguf' -p 'Once upon a time' -n 60 -t 0 -o '$T/lim.h5'"
row "file-size limit (sim)" 1 "File too large" \
    --absent "$T/o-lim/summary.tsv" --absent "$T/o-lim/traces.tsv" \
    -- sh -c "ulimit -f 4; exec '$sim' -q --no-plots -P h2o -b 8 -o '$T/o-lim' '$trace'"
finish
