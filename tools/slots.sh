# shellcheck shell=bash
# slots.sh: sourced by the scripts that run commands in the background a few at a time
# (tools/run-tests.sh, tools/fuzz.sh, tests/integration/test_cross_arch.sh):
#   for x in ...; do wait_slot "$N"; something "$x" & done; wait
# wait_slot N returns once fewer than N background jobs of the calling shell are running.
wait_slot() {
    while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do
        wait -n
    done
}
