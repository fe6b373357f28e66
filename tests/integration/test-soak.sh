#!/bin/sh
# A short slice of the soak (tests/soak/soak.py, `make soak`): 20 seconds
# of the same mix, one kill -9 restart and one live update included, every
# reply checked against the model.
here=$(cd "$(dirname "$0")" && pwd)
echo "1..1"
if out=$(SOAK_SEED=${SOAK_SEED:-17} /usr/bin/python3 "$here/../soak/soak.py" --seconds 20 2>&1); then
    echo "ok 1 - a 20 s soak: every reply as the model says"
    echo "$out" | grep -E "^Seed|^\| (kill9|live_update) " | sed 's/^/# /'
else
    echo "not ok 1 - a 20 s soak"
    echo "$out" | tail -40 | sed 's/^/# /'
fi
