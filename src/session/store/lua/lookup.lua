return {redis.call('GET', p .. ':refresh:' .. ARGV[3])}
