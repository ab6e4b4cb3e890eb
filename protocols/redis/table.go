package redis

// Key layouts used by the table.
var (
	noKeys     = KeySpec{}
	key1       = KeySpec{First: 1, Last: 1, Step: 1}
	key2       = KeySpec{First: 2, Last: 2, Step: 1}  // container subcommands
	keys12     = KeySpec{First: 1, Last: 2, Step: 1}  // source and destination
	keysAll    = KeySpec{First: 1, Last: -1, Step: 1} // every argument
	keysPairs  = KeySpec{First: 1, Last: -1, Step: 2} // key value pairs
	keysTimout = KeySpec{First: 1, Last: -2, Step: 1} // keys, then a timeout
	keysFrom2  = KeySpec{First: 2, Last: -1, Step: 1}
	numKeys1   = KeySpec{NumKeys: 1}
	numKeys2   = KeySpec{NumKeys: 2}
	destNum2   = KeySpec{First: 1, Last: 1, Step: 1, NumKeys: 2} // destination, numkeys, keys
	streams    = KeySpec{Streams: true}
)

// r, w and n build plain commands: readonly, writing, and neither (Redis
// flags neither on commands such as EVAL that may or may not write).
func r(name string, arity int, keys KeySpec) Command {
	return Command{Name: name, Arity: arity, Readonly: true, Class: ClassPlain, Keys: keys}
}

func w(name string, arity int, keys KeySpec) Command {
	return Command{Name: name, Arity: arity, Class: ClassPlain, Keys: keys}
}

func n(name string, arity int, keys KeySpec) Command { return w(name, arity, keys) }

// as sets the command's class.
func (c Command) as(class Class) Command { c.Class = class; return c }

// split makes the command splittable with the given merge.
func (c Command) split(m Merge) Command { c.Class, c.Merge = ClassSplit, m; return c }

// container is a command whose subcommands are listed as "name|sub";
// subcommands it doesn't list are unsupported.
func container(name string) Command { return n(name, -2, noKeys).as(ClassUnsupported) }

// commands is the command table: Redis 7.0 (with a few 7.2 and 7.4
// additions), arities, flags and key positions as the server's COMMAND
// INFO reports them (server_test.go checks them against a real server),
// and metamesh's class. README.md's command table is generated from it.
var commands = []Command{
	// Strings.
	w("append", 3, key1),
	w("decr", 2, key1),
	w("decrby", 3, key1),
	r("get", 2, key1),
	w("getdel", 2, key1),
	w("getex", -2, key1),
	r("getrange", 4, key1),
	w("getset", 3, key1),
	w("incr", 2, key1),
	w("incrby", 3, key1),
	w("incrbyfloat", 3, key1),
	r("lcs", -3, keys12),
	r("mget", -2, keysAll).split(MergeKeyOrder),
	w("mset", -3, keysPairs).split(MergeAllOK),
	w("msetnx", -3, keysPairs),
	w("psetex", 4, key1),
	w("set", -3, key1),
	w("setex", 4, key1),
	w("setnx", 3, key1),
	w("setrange", 4, key1),
	r("strlen", 2, key1),
	r("substr", 4, key1),

	// Bitmaps.
	r("bitcount", -2, key1),
	w("bitfield", -2, key1),
	r("bitfield_ro", -2, key1),
	w("bitop", -4, keysFrom2),
	r("bitpos", -3, key1),
	r("getbit", 3, key1),
	w("setbit", 4, key1),

	// Generic key commands.
	w("copy", -3, keys12),
	w("del", -2, keysAll).split(MergeSum),
	r("dump", 2, key1),
	r("exists", -2, keysAll).split(MergeSum),
	w("expire", -3, key1),
	w("expireat", -3, key1),
	r("expiretime", 2, key1),
	w("persist", 2, key1),
	w("pexpire", -3, key1),
	w("pexpireat", -3, key1),
	r("pexpiretime", 2, key1),
	r("pttl", 2, key1),
	w("rename", 3, keys12),
	w("renamenx", 3, keys12),
	w("restore", -4, key1),
	w("sort", -2, key1),
	r("sort_ro", -2, key1),
	r("touch", -2, keysAll).split(MergeSum),
	r("ttl", 2, key1),
	r("type", 2, key1),
	w("unlink", -2, keysAll).split(MergeSum),
	container("object"),
	r("object|encoding", 3, key2),
	r("object|freq", 3, key2),
	r("object|idletime", 3, key2),
	r("object|refcount", 3, key2),
	container("memory"),
	r("memory|usage", -3, key2),
	r("dbsize", 1, noKeys).as(ClassUnsupported),
	w("flushall", -1, noKeys).as(ClassUnsupported),
	w("flushdb", -1, noKeys).as(ClassUnsupported),
	r("keys", 2, noKeys).as(ClassUnsupported),
	w("migrate", -6, noKeys).as(ClassUnsupported),
	w("move", 3, key1).as(ClassUnsupported),
	r("randomkey", 1, noKeys).as(ClassUnsupported),
	w("restore-asking", -4, key1).as(ClassUnsupported),
	r("scan", -2, noKeys).as(ClassUnsupported),
	w("swapdb", 3, noKeys).as(ClassUnsupported),

	// Hashes.
	w("hdel", -3, key1),
	r("hexists", 3, key1),
	w("hexpire", -6, key1),
	w("hexpireat", -6, key1),
	r("hexpiretime", -5, key1),
	r("hget", 3, key1),
	r("hgetall", 2, key1),
	w("hincrby", 4, key1),
	w("hincrbyfloat", 4, key1),
	r("hkeys", 2, key1),
	r("hlen", 2, key1),
	r("hmget", -3, key1),
	w("hmset", -4, key1),
	w("hpersist", -5, key1),
	w("hpexpire", -6, key1),
	w("hpexpireat", -6, key1),
	r("hpexpiretime", -5, key1),
	r("hpttl", -5, key1),
	r("hrandfield", -2, key1),
	r("hscan", -3, key1),
	w("hset", -4, key1),
	w("hsetnx", 4, key1),
	r("hstrlen", 3, key1),
	r("httl", -5, key1),
	r("hvals", 2, key1),

	// Lists.
	w("blmove", 6, keys12).as(ClassBlocking),
	w("blmpop", -5, numKeys2).as(ClassBlocking),
	w("blpop", -3, keysTimout).as(ClassBlocking),
	w("brpop", -3, keysTimout).as(ClassBlocking),
	w("brpoplpush", 4, keys12).as(ClassBlocking),
	r("lindex", 3, key1),
	w("linsert", 5, key1),
	r("llen", 2, key1),
	w("lmove", 5, keys12),
	w("lmpop", -4, numKeys1),
	w("lpop", -2, key1),
	r("lpos", -3, key1),
	w("lpush", -3, key1),
	w("lpushx", -3, key1),
	r("lrange", 4, key1),
	w("lrem", 4, key1),
	w("lset", 4, key1),
	w("ltrim", 4, key1),
	w("rpop", -2, key1),
	w("rpoplpush", 3, keys12),
	w("rpush", -3, key1),
	w("rpushx", -3, key1),

	// Sets.
	w("sadd", -3, key1),
	r("scard", 2, key1),
	r("sdiff", -2, keysAll),
	w("sdiffstore", -3, keysAll),
	r("sinter", -2, keysAll),
	r("sintercard", -3, numKeys1),
	w("sinterstore", -3, keysAll),
	r("sismember", 3, key1),
	r("smembers", 2, key1),
	r("smismember", -3, key1),
	w("smove", 4, keys12),
	w("spop", -2, key1),
	r("srandmember", -2, key1),
	w("srem", -3, key1),
	r("sscan", -3, key1),
	r("sunion", -2, keysAll),
	w("sunionstore", -3, keysAll),

	// Sorted sets.
	w("bzmpop", -5, numKeys2).as(ClassBlocking),
	w("bzpopmax", -3, keysTimout).as(ClassBlocking),
	w("bzpopmin", -3, keysTimout).as(ClassBlocking),
	w("zadd", -4, key1),
	r("zcard", 2, key1),
	r("zcount", 4, key1),
	r("zdiff", -3, numKeys1),
	w("zdiffstore", -4, destNum2),
	w("zincrby", 4, key1),
	r("zinter", -3, numKeys1),
	r("zintercard", -3, numKeys1),
	w("zinterstore", -4, destNum2),
	r("zlexcount", 4, key1),
	w("zmpop", -4, numKeys1),
	r("zmscore", -3, key1),
	w("zpopmax", -2, key1),
	w("zpopmin", -2, key1),
	r("zrandmember", -2, key1),
	r("zrange", -4, key1),
	r("zrangebylex", -4, key1),
	r("zrangebyscore", -4, key1),
	w("zrangestore", -5, keys12),
	r("zrank", -3, key1),
	w("zrem", -3, key1),
	w("zremrangebylex", 4, key1),
	w("zremrangebyrank", 4, key1),
	w("zremrangebyscore", 4, key1),
	r("zrevrange", -4, key1),
	r("zrevrangebylex", -4, key1),
	r("zrevrangebyscore", -4, key1),
	r("zrevrank", -3, key1),
	r("zscan", -3, key1),
	r("zscore", 3, key1),
	r("zunion", -3, numKeys1),
	w("zunionstore", -4, destNum2),

	// Streams. XREAD and XREADGROUP with BLOCK are blocking (Decode
	// tells them apart).
	w("xack", -4, key1),
	w("xadd", -5, key1),
	w("xautoclaim", -6, key1),
	w("xclaim", -6, key1),
	w("xdel", -3, key1),
	container("xgroup"),
	w("xgroup|create", -5, key2),
	w("xgroup|createconsumer", 5, key2),
	w("xgroup|delconsumer", 5, key2),
	w("xgroup|destroy", 4, key2),
	w("xgroup|setid", -5, key2),
	container("xinfo"),
	r("xinfo|consumers", 4, key2),
	r("xinfo|groups", 3, key2),
	r("xinfo|stream", -3, key2),
	r("xlen", 2, key1),
	r("xpending", -3, key1),
	r("xrange", -4, key1),
	r("xread", -4, streams),
	w("xreadgroup", -7, streams),
	r("xrevrange", -4, key1),
	w("xsetid", -3, key1),
	w("xtrim", -4, key1),

	// HyperLogLog.
	w("pfadd", -2, key1),
	r("pfcount", -2, keysAll),
	w("pfdebug", 3, key2).as(ClassUnsupported),
	w("pfmerge", -2, keysAll),
	n("pfselftest", 1, noKeys).as(ClassUnsupported),

	// Geo.
	w("geoadd", -5, key1),
	r("geodist", -4, key1),
	r("geohash", -2, key1),
	r("geopos", -2, key1),
	w("georadius", -6, key1),
	w("georadiusbymember", -5, key1),
	r("georadiusbymember_ro", -5, key1),
	r("georadius_ro", -6, key1),
	r("geosearch", -7, key1),
	w("geosearchstore", -8, keys12),

	// Scripting and functions: EVAL and FCALL run on the upstream of
	// their first key; script and function management would have to
	// reach every upstream.
	n("eval", -3, numKeys2),
	r("eval_ro", -3, numKeys2),
	n("evalsha", -3, numKeys2),
	r("evalsha_ro", -3, numKeys2),
	n("fcall", -3, numKeys2),
	r("fcall_ro", -3, numKeys2),
	container("function"),
	container("script"),

	// Pub/sub. PUBLISH and SPUBLISH are plain commands.
	n("monitor", 1, noKeys).as(ClassPubSub),
	n("psubscribe", -2, noKeys).as(ClassPubSub),
	n("publish", 3, noKeys),
	container("pubsub"),
	n("punsubscribe", -1, noKeys).as(ClassPubSub),
	n("spublish", 3, key1),
	n("ssubscribe", -2, keysAll).as(ClassPubSub),
	n("subscribe", -2, noKeys).as(ClassPubSub),
	n("sunsubscribe", -1, keysAll).as(ClassPubSub),
	n("unsubscribe", -1, noKeys).as(ClassPubSub),

	// Transactions.
	n("discard", 1, noKeys).as(ClassTransaction),
	n("exec", 1, noKeys).as(ClassTransaction),
	n("multi", 1, noKeys).as(ClassTransaction),
	n("unwatch", 1, noKeys).as(ClassTransaction),
	n("watch", -2, keysAll).as(ClassTransaction),

	// Connection: answered by the proxy.
	n("auth", -2, noKeys).as(ClassLocal),
	container("client"),
	n("client|getname", 2, noKeys).as(ClassLocal),
	n("client|setinfo", 4, noKeys).as(ClassLocal),
	n("client|setname", 3, noKeys).as(ClassLocal),
	n("echo", 2, noKeys).as(ClassLocal),
	n("hello", -1, noKeys).as(ClassLocal),
	n("ping", -1, noKeys).as(ClassLocal),
	n("quit", -1, noKeys).as(ClassLocal),
	n("reset", 1, noKeys).as(ClassLocal),
	n("select", 2, noKeys).as(ClassLocal),

	// Server.
	r("lolwut", -1, noKeys),
	n("time", 1, noKeys),
	n("wait", 3, noKeys).as(ClassBlocking),
	n("waitaof", 4, noKeys).as(ClassBlocking),
	container("acl"),
	n("asking", 1, noKeys).as(ClassUnsupported),
	n("bgrewriteaof", 1, noKeys).as(ClassUnsupported),
	n("bgsave", -1, noKeys).as(ClassUnsupported),
	container("cluster"),
	n("command", -1, noKeys).as(ClassUnsupported),
	container("config"),
	n("debug", -2, noKeys).as(ClassUnsupported),
	n("failover", -1, noKeys).as(ClassUnsupported),
	n("info", -1, noKeys).as(ClassUnsupported),
	n("lastsave", 1, noKeys).as(ClassUnsupported),
	container("latency"),
	container("module"),
	n("psync", -3, noKeys).as(ClassUnsupported),
	n("readonly", 1, noKeys).as(ClassUnsupported),
	n("readwrite", 1, noKeys).as(ClassUnsupported),
	n("replconf", -1, noKeys).as(ClassUnsupported),
	n("replicaof", 3, noKeys).as(ClassUnsupported),
	n("role", 1, noKeys).as(ClassUnsupported),
	n("save", 1, noKeys).as(ClassUnsupported),
	n("shutdown", -1, noKeys).as(ClassUnsupported),
	n("slaveof", 3, noKeys).as(ClassUnsupported),
	container("slowlog"),
	n("sync", 1, noKeys).as(ClassUnsupported),
}
