#!/usr/bin/env bats
# Every tool's --help (generated from its option table) against its man
# page and its bash and zsh completions, both ways, so they cannot drift.

load helpers

# The options a tool's --help lists: "-o" and "--output" from its own
# option lines ("  -m, --model DIR  ..." or "      --stats  ..."), and
# every -x / --long token of the "Common options:" paragraph.
help_options() {
    help_texts "$1" | awk '
        /^Common options:/ { common = 1 }
        common && /^(Common options:|  )/ {
            n = split($0, w, /[ ,\/|]+/)
            for (i = 1; i <= n; i++) if (w[i] ~ /^--?[[:alnum:]][[:alnum:]-]*$/) print w[i]
            next
        }
        { common = 0 }
        /^ +(-[[:alnum:]], )?--[[:alnum:]-]+/ {
            line = $0; sub(/^ +/, "", line)
            if (line ~ /^-[[:alnum:]], /) { print substr(line, 1, 2); line = substr(line, 5) }
            split(line, w, " "); print w[1]
        }'
}

# A tool's --help, and for a tool with stages ("Usage: T [OPTIONS] a|b")
# each stage's help too (`T a --help`), where the stage's options are.
stages() {
    "$1" --help | sed -n '1s/^Usage: [^ ]* \[OPTIONS\] \([a-z]*\(|[a-z]*\)\{1,\}\)$/\1/p' | tr '|' ' '
}

help_texts() {
    local s
    "$1" --help
    for s in $(stages "$1"); do
        "$1" "$s" --help
    done
}

tools() {
    local t
    for t in "$BIN"/osp-*; do
        [ -x "$t" ] && basename "$t"
    done
}

@test "there is at least one tool" {
    [ -n "$(tools)" ]
}

@test "every tool: --help fits a screen and shows an example; --version; usage errors" {
    for t in $(tools); do
        run "$BIN/$t" --help
        assert_success
        assert_line --index 0 --partial "Usage: $t "
        assert_output --partial "Example:"
        [ "${#lines[@]}" -le 24 ] || { echo "$t --help: ${#lines[@]} lines"; false; }
        for line in "${lines[@]}"; do
            [ "${#line}" -le 80 ] || { echo "$t --help: line over 80 columns: $line"; false; }
        done
        for s in $(stages "$BIN/$t"); do
            run "$BIN/$t" "$s" --help
            assert_success
            assert_line --index 0 "Usage: $t [OPTIONS] $s"
            [ "${#lines[@]}" -le 24 ] || { echo "$t $s --help: ${#lines[@]} lines"; false; }
            for line in "${lines[@]}"; do
                [ "${#line}" -le 80 ] || { echo "$t $s --help: over 80 columns: $line"; false; }
            done
        done
        run "$BIN/$t" --version
        assert_success
        assert_output --regexp "^$t \(osp\) [0-9]+\.[0-9]+\.[0-9]+\$"
        fails_with 2 "$BIN/$t" --no-such-option
        fails_with 2 "$BIN/$t" --threads x
    done
}

@test "every tool has a man page and bash and zsh completions" {
    for t in $(tools); do
        [ -f "$REPO/man/man1/$t.1" ] || { echo "no man/man1/$t.1"; false; }
        [ -f "$REPO/completions/$t.bash" ] || { echo "no completions/$t.bash"; false; }
        [ -f "$REPO/completions/_$t" ] || { echo "no completions/_$t"; false; }
    done
}

@test "every --help option is in the man page and both completions" {
    for t in $(tools); do
        for o in $(help_options "$BIN/$t"); do
            grep -qF -- "${o//-/\\-}" "$REPO/man/man1/$t.1" || { echo "$t: $o not in man page"; false; }
            grep -qE -- "(^|[^[:alnum:]-])$o([^[:alnum:]-]|$)" "$REPO/completions/$t.bash" ||
                { echo "$t: $o not in completions/$t.bash"; false; }
            grep -qE -- "(^|[^[:alnum:]-])$o([^[:alnum:]-]|$)" "$REPO/completions/_$t" ||
                { echo "$t: $o not in completions/_$t"; false; }
        done
    done
}

@test "the completions offer no option that --help lacks" {
    for t in $(tools); do
        local known
        known=" $(help_options "$BIN/$t" | tr '\n' ' ') "
        for f in "$REPO/completions/$t.bash" "$REPO/completions/_$t"; do
            # (the flags of compgen, complete and _arguments are not the tool's)
            for o in $(grep -v '^ *#' "$f" | sed -E 's/(compgen|complete|_arguments)( -[[:alpha:]])+//g' |
                grep -oE -- "(^|[^[:alnum:]-])--?[[:alpha:]][[:alnum:]-]*" |
                grep -oE -- '--?[[:alnum:]-]+' | sort -u); do
                [[ $known == *" $o "* ]] || { echo "$f: $o is not an option of $t"; false; }
            done
        done
    done
}

# Runs tool T's bash completion on the words after the tool name (the last
# being completed) and prints the candidates, one a line. bash-completion's
# helpers are stubbed, so the test needs only bash.
complete_words() {
    local t=$1
    shift
    bash -c '
        _init_completion() {
            words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
            cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        }
        _filedir() { COMPREPLY=(FILE); }
        source "$1"
        t=$2
        shift 2
        COMP_WORDS=("$t" "$@") COMP_CWORD=$#
        fn=$(complete -p "$t" | sed "s/.*-F \([^ ]*\) .*/\1/")
        "$fn" "$t" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' _ "$REPO/completions/$t.bash" "$t" "$@"
}

@test "the bash completions complete every option and its values" {
    for t in $(tools); do
        run complete_words "$t" --
        assert_success
        for o in $(help_options "$BIN/$t" | grep -- '^--'); do
            assert_line -- "$o"
        done
    done
    run complete_words osp-info --format ""
    assert_output "$(printf '%s\n' table json)"
    run complete_words osp-info --device c
    assert_output "$(printf '%s\n' cpu cuda)"
    run complete_words osp-info ""
    assert_output FILE
}

@test "every man page renders without warnings" {
    command -v groff >/dev/null || skip "groff not installed"
    for page in "$REPO"/man/man1/*.1 "$REPO"/man/man5/*.5; do
        run --separate-stderr groff -man -Tutf8 -t -ww -z "$page"
        [ "$status" -eq 0 ] && [ -z "$stderr" ] || { echo "$page: $stderr"; false; }
    done
}

@test "the completion files parse (bash -n, zsh -n)" {
    for f in "$REPO"/completions/*.bash; do
        bash -n "$f"
    done
    command -v zsh >/dev/null || skip "zsh not installed"
    for f in "$REPO"/completions/_*; do
        zsh -n "$f"
    done
}
