# Idle RSS of `patchwire agent` with push (holding GET /v1/events) and with --no-push, alternating.
# Run from the repository after `npm run build`: bash bench/agent-push-memory.sh
set -e

cd "$(dirname "$0")/.."
Q=$(mktemp -d); export PATCHWIRE_TOKEN=memtok
P=$(node -e "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")
node bin/patchwire.js serve --data $Q/data --port $P --log-level warn > $Q/serve.log 2>&1 & SP=$!
S=http://127.0.0.1:$P
until curl -sf $S/healthz >/dev/null; do sleep 0.2; done
node bin/patchwire.js keygen --out $Q/k >/dev/null
node bin/patchwire.js product create --server $S --product acme --key $Q/k --root-out $Q/r.json >/dev/null
mkdir -p $Q/t && echo hi > $Q/t/f
node bin/patchwire.js publish --server $S --product acme --version 1.0.0 --key $Q/k $Q/t >/dev/null
node bin/patchwire.js init --dir $Q/i --server $S --product acme --root $Q/r.json >/dev/null
node bin/patchwire.js check --dir $Q/i --json >/dev/null
for round in 1 2 3; do
  for mode in push nopush; do
    if [ $mode = push ]; then node bin/patchwire.js agent --dir $Q/i > $Q/a.log 2>&1 & AP=$!; else node bin/patchwire.js agent --dir $Q/i --no-push > $Q/a.log 2>&1 & AP=$!; fi
    sleep 6
    echo "$round $mode $(grep -E 'VmRSS|VmHWM' /proc/$AP/status | tr -s ' \t' ' ' | tr '\n' ' ') $(grep -c 'stream open' $Q/a.log)"
    kill $AP; wait $AP 2>/dev/null || true
  done
done
kill $SP; wait $SP 2>/dev/null || true
rm -rf $Q
