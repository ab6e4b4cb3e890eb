package redis

import (
	"bytes"

	"github.com/metamesh/metamesh/protocols"
)

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

// crcTable is CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0),
// the checksum Redis Cluster maps keys to slots with.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// Slot returns the hash slot of key: CRC16 of the key modulo SlotCount,
// or of its hash tag when it has one (the bytes between the first '{'
// and the next '}', when there are any: "{user:1}:cart" and
// "{user:1}:orders" share a slot).
func Slot(key []byte) int {
	if open := bytes.IndexByte(key, '{'); open >= 0 {
		if n := bytes.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	var crc uint16
	for _, b := range key {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^b]
	}
	return int(crc) & (SlotCount - 1)
}

// SlotString is Slot for a key held as a string (the key attribute).
func SlotString(key string) int {
	if open := indexByte(key, '{'); open >= 0 {
		if n := indexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^key[i]]
	}
	return int(crc) & (SlotCount - 1)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// KeySlots reports the slot of every key of req, a request decoded by
// this codec: the slot of its keys and true when they all share one (or
// it has one key), -1 and true when it has none, and false when its keys
// span slots (Redis Cluster answers such a command with CROSSSLOT). A
// command with one key position is read from the key attribute alone.
func KeySlots(req *protocols.Message) (slot int, one bool) {
	key, ok := req.Headers.Get(AttrKey)
	if !ok {
		return -1, true
	}
	slot = SlotString(key)
	cmd, known := CommandOf(req)
	if !known || !cmd.Keys.many() {
		return slot, true
	}
	args, err := Args(nil, req.Raw)
	if err != nil {
		return slot, true
	}
	for _, p := range cmd.KeyPositions(nil, args) {
		if Slot(args[p]) != slot {
			return slot, false
		}
	}
	return slot, true
}

// many reports whether a command may have more than one key.
func (k KeySpec) many() bool {
	return k.NumKeys > 0 || k.Streams || (k.First > 0 && k.Last != k.First)
}

// CrossSlotReply is redis-server's error for a command whose keys span
// slots.
var CrossSlotReply = []byte("-CROSSSLOT Keys in request don't hash to the same slot\r\n")
