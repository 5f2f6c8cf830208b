# checks.sh: the counting helpers of the shell suites (sourced; prints "N passed, N failed").
pass=0
fail=0

ok() {
    pass=$((pass + 1))
    echo "ok - $1"
}
bad() {
    fail=$((fail + 1))
    echo "FAIL - $1"
}
# check NAME COMMAND...: the command's exit status decides.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
# not COMMAND...: succeeds when the command fails.
not() {
    ! "$@"
}
# check_expr NAME 'shell condition'
check_expr() {
    if eval "$2"; then ok "$1"; else bad "$1"; fi
}
# Prints the counts and exits: 0 when nothing failed.
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
