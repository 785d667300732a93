#!/bin/sh
# Starts one Redis of the set. The first time, pod 0 is the master and the
# others replicate it; after a failover the sentinels know better, so a pod
# that restarts asks them first and replicates whoever they name (a pod that
# came back as master beside a promoted replica would split the set).
set -eu
password=$(cat /etc/redis-secret/password)
self="$(hostname).tokengate-redis-headless"
{
  printf 'requirepass "%s"\nmasterauth "%s"\n' "$password" "$password"
  printf 'replica-announce-ip %s\n' "$self"
} > /run/redis/redis.conf
master=$(redis-cli -h tokengate-redis-sentinel -p 26379 --raw sentinel get-master-addr-by-name tokengate 2>/dev/null | head -n 1 || true)
if [ -z "$master" ]; then
  # No sentinel answers yet: the first start of the set.
  case "$(hostname)" in
    *-0) master="" ;;
    *) master="tokengate-redis-0.tokengate-redis-headless" ;;
  esac
fi
if [ -n "$master" ] && [ "$master" != "$self" ]; then
  printf 'replicaof %s 6379\n' "$master" >> /run/redis/redis.conf
fi
exec redis-server /run/redis/redis.conf --appendonly yes --dir /data --save ""
