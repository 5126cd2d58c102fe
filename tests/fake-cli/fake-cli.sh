#!/bin/sh
# fake-cli.sh: a stand-in for the provider CLIs (claude, codex, gemini, grok, vibe) in the
# integration tests. It owns nothing but itself: it records how it was started and replays
# output captured from the real CLI (tests/fixtures/cli-samples), with knobs to misbehave.
# No network, no compilation, plain POSIX sh (runs under dash).
#
# Which CLI it plays: $FAKE_CLI_NAME, else the name it was started as (the test helper in
# tests/integration/common/fake_cli.rs installs symlinks named claude, codex, … into a test's bin dir).
#
# What it does, in order:
#   1. FAKE_CLI_IGNORE_TERM=1   ignore SIGTERM (inherited by every process it starts).
#   2. FAKE_CLI_RECORD_DIR=DIR  record this invocation in DIR/<n>/ (n = 1, 2, … taken with
#                               mkdir, which is atomic, so concurrent runs never share one):
#                               argv (NUL-terminated elements), cwd (physical), env (the
#                               environment it was started with, NUL-separated KEY=VALUE),
#                               pid, stdin (the exact bytes), files/<flag> and
#                               files/<flag>.mode for the temp files named by --prompt-file,
#                               --mcp-config and --output-schema (the gateway removes them
#                               after the run, so a test can only see them here).
#                               stdin is always read to EOF (codex does the same) unless it
#                               is a terminal; /dev/null gives EOF at once.
#   3. FAKE_CLI_GRANDCHILD=1    start `sleep 1000` in the background (it keeps stdout and
#                               stderr, like a tool subprocess would) and write its pid to
#                               DIR/<n>/grandchild.pid.
#      Then DIR/<n>/recorded marks the record complete.
#   4. `--version` as the first argument: print <cli>/version.stdout, exit 0. The knobs
#      below apply to runs only, so a version probe never hangs or fails.
#   5. FAKE_CLI_DELAY_MS=N      sleep N ms before answering.
#   6. replay FAKE_CLI_CASE (default: the CLI's successful streaming case, see below) from
#      $FAKE_CLI_FIXTURES (default: ../fixtures/cli-samples next to this script, symlinks
#      resolved): <cli>/<case>.stderr to stderr, then
#      FAKE_CLI_STDERR=TEXT        TEXT and a newline to stderr,
#      FAKE_CLI_BIG_OUTPUT_BYTES=N exactly N more bytes on stdout ('x'… then a newline), before
#                                  the fixture so its final result line still comes last,
#      <cli>/<case>.stdout to stdout; with
#      FAKE_CLI_HANG=1             only its first line, then wait "forever" (an hour, so a
#                                  leaked one goes away; the same pid, SIGTERM as set above).
#      vibe: <case>.export.json, when captured, is copied to <--output-dir>/export.json.
#   7. exit with FAKE_CLI_EXIT, else the case's exit code in manifest.jsonl, else 0, and
#      write it to DIR/<n>/exit first (absent = the fake was killed or is still running).
#
# Misuse (unknown CLI name, missing fixture, malformed knob) exits 99 with a message.

set -u

# Before anything else, so a SIGTERM that arrives while recording is ignored too.
if [ "${FAKE_CLI_IGNORE_TERM:-}" = 1 ]; then
    trap '' TERM
fi

die() {
    printf 'fake-cli: %s\n' "$*" >&2
    exit 99
}

# A non-negative decimal knob, without leading zeros (sh arithmetic reads 010 as octal).
number() {
    case $2 in
        '' | *[!0-9]*) die "$1 must be a non-negative integer, got '$2'" ;;
    esac
    n=${2#"${2%%[!0]*}"}
    printf '%s' "${n:-0}"
}

# --- which CLI, where the fixtures are -------------------------------------------------

self=$0
name=${FAKE_CLI_NAME:-${self##*/}}
case $name in
    claude) default_case=stream-json-partial-ok ;;
    # The gateway always sends codex its prompt on stdin (`-- -`): the captured `-` run.
    codex) default_case=exec-stdin-dash ;;
    gemini) default_case=stream-json-ok ;;
    grok) default_case=streaming-json-ok ;;
    vibe) default_case=streaming-ok ;;
    *) die "unknown CLI '$name': install as claude, codex, gemini, grok or vibe, or set FAKE_CLI_NAME" ;;
esac

if [ -n "${FAKE_CLI_FIXTURES:-}" ]; then
    fixtures=$FAKE_CLI_FIXTURES
else
    # Follow the symlink chain from the installed name back to this file in the repo.
    script=$self
    while [ -L "$script" ]; do
        target=$(readlink "$script") || die "cannot read the symlink $script"
        case $target in
            /*) script=$target ;;
            */*) script=${script%/*}/$target ;;
            *) case $script in */*) script=${script%/*}/$target ;; *) script=$target ;; esac ;;
        esac
    done
    case $script in
        */*) fixtures=${script%/*}/../fixtures/cli-samples ;;
        *) fixtures=../fixtures/cli-samples ;;
    esac
fi

# --- record ----------------------------------------------------------------------------

rec=
if [ -n "${FAKE_CLI_RECORD_DIR:-}" ]; then
    base=$FAKE_CLI_RECORD_DIR
    mkdir -p "$base" || die "cannot create FAKE_CLI_RECORD_DIR $base"
    n=1
    # mkdir fails when the number is taken: try the next one. Any other failure is fatal.
    while ! mkdir "$base/$n" 2>/dev/null; do
        [ -e "$base/$n" ] || die "cannot create $base/$n"
        n=$((n + 1))
    done
    rec=$base/$n
    if [ $# -gt 0 ]; then
        printf '%s\0' "$@" >"$rec/argv"
    else
        : >"$rec/argv"
    fi
    printf '%s' "$(pwd -P)" >"$rec/cwd"
    # The environment exactly as passed to exec: /proc has it NUL-separated; elsewhere
    # `env -0` (BSD and GNU), else plain `env` (values with newlines become ambiguous).
    if [ -r "/proc/$$/environ" ]; then
        cat "/proc/$$/environ" >"$rec/env"
    elif ! env -0 >"$rec/env" 2>/dev/null; then
        env >"$rec/env"
    fi
    printf '%s' "$$" >"$rec/pid"
fi

# Read stdin to EOF, whether or not it is recorded: codex blocks until EOF, and a gateway
# that never closes stdin must show up as a hang here too.
if [ -t 0 ]; then
    [ -z "$rec" ] || : >"$rec/stdin"
elif [ -n "$rec" ]; then
    cat >"$rec/stdin"
else
    cat >/dev/null
fi

save_file() { # flag-name path
    [ -n "$rec" ] || return 0
    mkdir -p "$rec/files"
    if [ -f "$2" ]; then
        cp "$2" "$rec/files/$1"
        { stat -c %a "$2" 2>/dev/null || stat -f %Lp "$2"; } >"$rec/files/$1.mode"
    fi
}

# Options that matter: the temp files to keep, vibe's --output-dir. Both `--flag=value` and
# `--flag value`; nothing after `--` is an option (it is the prompt).
output_dir=
prev=
for arg in "$@"; do
    [ "$arg" = -- ] && break
    case $prev in
        --prompt-file | --mcp-config | --output-schema) save_file "${prev#--}" "$arg" ;;
        --output-dir) output_dir=$arg ;;
    esac
    case $arg in
        --prompt-file=* | --mcp-config=* | --output-schema=*)
            flag=${arg%%=*}
            save_file "${flag#--}" "${arg#*=}"
            ;;
        --output-dir=*) output_dir=${arg#*=} ;;
    esac
    prev=$arg
done

if [ "${FAKE_CLI_GRANDCHILD:-}" = 1 ]; then
    sleep 1000 &
    [ -z "$rec" ] || printf '%s' "$!" >"$rec/grandchild.pid"
fi

[ -z "$rec" ] || : >"$rec/recorded"

finish() { # exit-code
    [ -z "$rec" ] || printf '%s' "$1" >"$rec/exit"
    exit "$1"
}

# --- answer ----------------------------------------------------------------------------

if [ "${1:-}" = --version ]; then
    [ -f "$fixtures/$name/version.stdout" ] || die "no fixture $fixtures/$name/version.stdout"
    cat "$fixtures/$name/version.stdout"
    finish 0
fi

case=${FAKE_CLI_CASE:-$default_case}
stdout_file=$fixtures/$name/$case.stdout
[ -f "$stdout_file" ] || die "no fixture $stdout_file (FAKE_CLI_CASE=$case)"

code=0
if [ -n "${FAKE_CLI_EXIT:-}" ]; then
    code=$(number FAKE_CLI_EXIT "$FAKE_CLI_EXIT") || exit 99
elif [ -f "$fixtures/manifest.jsonl" ]; then
    # One JSON object per line, as Python's json.dumps writes it.
    line=$(grep -F "\"cli\": \"$name\", \"case\": \"$case\"," "$fixtures/manifest.jsonl" | head -n 1)
    value=${line#*\"exit_code\": }
    value=${value%%,*}
    value=${value%%\}*}
    case $value in
        '' | *[!0-9]*) ;;
        *) code=$value ;;
    esac
fi

if [ -n "${FAKE_CLI_DELAY_MS:-}" ]; then
    ms=$(number FAKE_CLI_DELAY_MS "$FAKE_CLI_DELAY_MS") || exit 99
    # Fractional seconds: GNU, BSD and busybox sleep all take them. 1000 + keeps the zeros.
    frac=$((ms % 1000 + 1000))
    sleep "$((ms / 1000)).${frac#1}"
fi

[ -s "$fixtures/$name/$case.stderr" ] && cat "$fixtures/$name/$case.stderr" >&2
[ -n "${FAKE_CLI_STDERR:-}" ] && printf '%s\n' "$FAKE_CLI_STDERR" >&2

if [ -n "${FAKE_CLI_BIG_OUTPUT_BYTES:-}" ]; then
    big=$(number FAKE_CLI_BIG_OUTPUT_BYTES "$FAKE_CLI_BIG_OUTPUT_BYTES") || exit 99
    if [ "$big" -gt 0 ]; then
        # Newline-terminated, so the fixture's first JSON line is not glued to it.
        head -c "$((big - 1))" /dev/zero | tr '\0' x
        echo
    fi
fi

if [ "${FAKE_CLI_HANG:-}" = 1 ]; then
    head -n 1 "$stdout_file"
    # exec keeps the pid (and the ignored SIGTERM): nothing is left behind if it is killed.
    exec sleep 3600
fi

cat "$stdout_file"

if [ "$name" = vibe ] && [ -n "$output_dir" ] && [ -f "$fixtures/vibe/$case.export.json" ]; then
    mkdir -p "$output_dir" && cp "$fixtures/vibe/$case.export.json" "$output_dir/export.json"
fi

finish "$code"
