package conformance

import (
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSweepCoversTheInputSpace: whatever the seed, the default sweep has
// every class, every power-of-two boundary up to the message limit, a
// size strictly between 64 KiB and 1 MiB, JSON from a few bytes to over
// 1 MiB, and each case is what its class says.
func TestSweepCoversTheInputSpace(t *testing.T) {
	t.Parallel()
	limit := NewConfig().maxMessageSize()
	for _, seed := range []uint64{1, 2, 42, 1 << 40, maxSafe} {
		classes := map[string]int{}
		sizes := map[int]bool{}
		var jsonMin, jsonMax, total int
		var midRange bool
		for _, k := range sweepCases(seed, limit) {
			p := k.payload()
			classes[k.class]++
			total += len(p)
			switch k.class {
			case classEmpty:
				assert.Empty(t, p)
			case classByte:
				assert.Len(t, p, 1)
			case classSize:
				sizes[len(p)] = true
				midRange = midRange || (len(p) > 64<<10 && len(p) < 1<<20 && len(p)&(len(p)-1) > 2 && (len(p)+1)&len(p) != 0)
			case classTextASCII, classTextMulti, classTextNewlines, classTextNUL:
				assert.True(t, utf8.Valid(p), "%s: %q", k.name, p)
				assert.False(t, json.Valid(p), "%s is not JSON: %q", k.name, p)
			case classBinary:
				assert.False(t, utf8.Valid(p), "%s: %q", k.name, p)
			}
			if k.tree != nil {
				require.True(t, json.Valid(p), "%s (seed %d): %s", k.name, seed, p)
				if jsonMin == 0 || len(p) < jsonMin {
					jsonMin = len(p)
				}
				jsonMax = max(jsonMax, len(p))
				assert.Equal(t, k.owner == idJSONIntegers, hasBigInt(t, p), "%s: %s", k.name, quoteClip(p))
			}
			switch k.class {
			case classTextMulti:
				assert.Less(t, utf8.RuneCount(p), len(p), "multi-byte: %q", p)
			case classTextNewlines:
				assert.Regexp(t, "[\r\n]", string(p))
			case classTextNUL:
				assert.Contains(t, string(p), "\x00")
			case classJSONString:
				if k.name == "a JSON string with \\u escapes" {
					assert.Contains(t, string(p), `\u`)
				}
			}
		}
		for _, c := range sweepClasses {
			assert.NotZero(t, classes[c], "class %s with seed %d", c, seed)
		}
		for p := 1; p+1 <= sweepRoom(limit); p *= 2 {
			if p <= fullTrioMax {
				for _, n := range []int{p - 1, p, p + 1} {
					assert.True(t, n == 0 || sizes[n], "size %d (seed %d)", n, seed)
				}
			} else {
				assert.True(t, sizes[p-1] || sizes[p] || sizes[p+1], "a size around %d (seed %d)", p, seed)
			}
		}
		assert.True(t, midRange, "a size strictly inside 64 KiB–1 MiB, off the boundaries (seed %d)", seed)
		assert.LessOrEqual(t, jsonMin, 8, "JSON of a few bytes")
		assert.Greater(t, jsonMax, 1<<20, "JSON over 1 MiB")
		t.Logf("seed %d: %d cases, %.1f MiB, classes %v", seed, len(sweepCases(seed, limit)), float64(total)/(1<<20), classes)
	}
}

// hasBigInt reports whether a JSON text holds an integer beyond 2^53.
func hasBigInt(t *testing.T, p []byte) bool {
	v, err := decodeExact(p)
	require.NoError(t, err)
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case json.Number:
			n, ok := new(big.Int).SetString(string(v), 10)
			return ok && n.CmpAbs(big.NewInt(maxSafe)) > 0
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		case map[string]any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// TestSweepReplays: a seed gives the same payloads, byte for byte; another
// seed other ones.
func TestSweepReplays(t *testing.T) {
	t.Parallel()
	limit := NewConfig().maxMessageSize()
	digest := func(seed uint64) [][32]byte {
		var out [][32]byte
		for _, k := range sweepCases(seed, limit) {
			out = append(out, sha256.Sum256(append([]byte(k.name+"\x00"), k.payload()...)))
		}
		return out
	}
	a := digest(7)
	assert.Equal(t, a, digest(7), "seed 7 twice")
	assert.NotEqual(t, a, digest(8), "seed 8")
	// A case's payload is the same however often it is made.
	for _, k := range sweepCases(7, limit) {
		if k.class != classSize {
			assert.Equal(t, k.payload(), k.payload(), k.name)
		}
	}
}

// TestSweepUnderSmallLimits: under a small message limit the sizes stop
// below it, and the sweep still has its classes.
func TestSweepUnderSmallLimits(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{4 << 10, 100 << 10, 1 << 20} {
		classes := map[string]bool{}
		for _, k := range sweepCases(3, limit) {
			classes[k.class] = true
			if k.class == classSize || k.class == classJSONLarge {
				assert.LessOrEqual(t, len(k.payload()), sweepRoom(limit), "%s under %d", k.name, limit)
			}
		}
		for _, c := range []string{classEmpty, classByte, classTextMulti, classBinary, classJSONNested, classBigInt} {
			assert.True(t, classes[c], "%s under %d", c, limit)
		}
	}
}
