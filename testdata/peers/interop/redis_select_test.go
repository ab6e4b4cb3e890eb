package interop

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// TestRedisSelect: clients of one standalone redis-server through the
// proxy each use the database they SELECTed (go-redis's DB option sends
// SELECT on every new connection); a transaction and a blocking command
// run in it too; a database past the server's 16 is refused as
// redis-server refuses it.
func TestRedisSelect(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisPolicyConfig(listen, "", "", up.Addr))
	ctx := context.Background()
	client := func(db int) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, PoolSize: 2, DB: db, DisableIdentity: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	db0, db2, db5 := client(0), client(2), client(5)
	noErr(t, db0.Set(ctx, "k", "zero", 0).Err())
	noErr(t, db2.Set(ctx, "k", "two", 0).Err())
	noErr(t, db5.MSet(ctx, "k", "five", "other", "x").Err())
	for db, want := range map[int]string{0: "zero", 2: "two", 5: "five"} {
		direct := redis.NewClient(&redis.Options{Addr: up.Addr, DB: db})
		got, err := direct.Get(ctx, "k").Result()
		_ = direct.Close()
		noErr(t, err)
		if got != want {
			t.Errorf("database %d on the server holds k = %q, want %q", db, got, want)
		}
	}
	for c, want := range map[*redis.Client]string{db0: "zero", db2: "two", db5: "five"} {
		if got := val(t, c.Get(ctx, "k")); got != want {
			t.Errorf("GET k through the proxy = %q, want %q", got, want)
		}
	}
	cmds, err := db2.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "n")
		p.Get(ctx, "k")
		return nil
	})
	noErr(t, err)
	if got := cmds[1].(*redis.StringCmd).Val(); got != "two" {
		t.Errorf("GET in a transaction of database 2 = %q", got)
	}
	noErr(t, db5.RPush(ctx, "list", "a").Err())
	if got := val(t, db5.BLPop(ctx, 0, "list")); got[1] != "a" {
		t.Errorf("BLPOP in database 5 = %v", got)
	}
	// One connection switching databases.
	conn := db0.Conn()
	defer conn.Close()
	noErr(t, conn.Select(ctx, 2).Err())
	if got := val(t, conn.Get(ctx, "k")); got != "two" {
		t.Errorf("after SELECT 2: GET k = %q", got)
	}
	noErr(t, conn.Select(ctx, 0).Err())
	if got := val(t, conn.Get(ctx, "k")); got != "zero" {
		t.Errorf("after SELECT 0: GET k = %q", got)
	}
	if err := conn.Select(ctx, 16).Err(); err == nil || !strings.Contains(err.Error(), "DB index is out of range") {
		t.Errorf("SELECT 16: %v, want redis-server's out of range error", err)
	}
}
