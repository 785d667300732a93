#!/bin/sh
# Starts the sentinel beside one Redis: monitors the set by hostname, with
# the master's password; rewrites its own config in a memory volume.
set -eu
password=$(cat /etc/redis-secret/password)
# After a failover the master is not pod 0: ask the running sentinels first.
master=$(redis-cli -h tokengate-redis-sentinel -p 26379 --raw sentinel get-master-addr-by-name tokengate 2>/dev/null | head -n 1 || true)
master=${master:-tokengate-redis-0.tokengate-redis-headless}
{
  printf 'port 26379\n'
  printf 'sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n'
  printf 'sentinel announce-ip %s.tokengate-redis-headless\n' "$(hostname)"
  printf 'sentinel monitor tokengate %s 6379 2\n' "$master"
  printf 'sentinel auth-pass tokengate "%s"\n' "$password"
  printf 'sentinel down-after-milliseconds tokengate 5000\nsentinel failover-timeout tokengate 30000\n'
} > /run/sentinel/sentinel.conf
exec redis-server /run/sentinel/sentinel.conf --sentinel
