package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/oe-rt/oe-rt/client"
)

func TestOracleOwnersAreChecks(t *testing.T) {
	t.Parallel()
	for _, id := range []string{idFields, idEchoBytes, idEchoJSON, idEchoEmpty, idConcurrent, idDrain} {
		assert.NotNil(t, Lookup(id), id)
	}
}

func TestJSONExactEqual(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{`{"a":1,"b":[true,null,"x"]}`, `{ "b" : [true, null, "x"], "a" : 1 }`, true},
		{`9007199254740993`, `9007199254740992`, false}, // 2^53+1 is not 2^53
		{`9007199254740993`, `9007199254740993`, true},
		{`1`, `1.0`, true},
		{`1e2`, `100`, true},
		{`-0`, `0`, true},
		{`0.1`, `0.10000000000000001`, false},
		{`"\u00e9"`, `"é"`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`[1,2]`, `[2,1]`, false},
		{`1e99999`, `1e99998`, false}, // compared as text, not expanded
		{`{"a":1} {"b":2}`, `{"a":1}`, false},
		{`"x"`, `x`, false},
	} {
		assert.Equal(t, c.eq, jsonExactEqual([]byte(c.a), []byte(c.b)), "%s vs %s", c.a, c.b)
	}
}

func TestEchoVerdict(t *testing.T) {
	t.Parallel()
	owner, words := echoVerdict(nil, []byte("{}"))
	assert.Equal(t, idEchoEmpty, owner)
	assert.Empty(t, words, "{} is what Baetyl's own runtimes answer")
	_, words = echoVerdict(nil, []byte("null"))
	assert.Contains(t, words, `got 4 bytes: "null"`)
	owner, words = echoVerdict([]byte(`{"n":9007199254740993}`), []byte(`{"n":9007199254740992}`))
	assert.Equal(t, idEchoJSON, owner)
	assert.Contains(t, words, "numbers compared exactly")
	owner, words = echoVerdict([]byte("hello world"), []byte(`"hello world"`))
	assert.Equal(t, idEchoBytes, owner)
	assert.Contains(t, words, `sent 11 bytes "hello world"`)
}

func TestFieldDiffs(t *testing.T) {
	t.Parallel()
	m := &client.Message{ID: 7, QOS: 1, Topic: "t", FunctionName: "f", FunctionInvokeID: "i", Timestamp: 5}
	assert.Empty(t, fieldDiffs(m, m, true))
	got := *m
	got.Timestamp = 0
	assert.Empty(t, fieldDiffs(m, &got, false), "Timestamp only where the schema has it")
	assert.Equal(t, "Timestamp = 0, want 5", fieldDiffs(m, &got, true))
	assert.Equal(t, `ID = 0x0, want 0x7; QOS = 0x0, want 0x1; Topic = "", want "t"; FunctionName = "", want "f"; FunctionInvokeID = "", want "i"`,
		fieldDiffs(m, &client.Message{}, false))
}

func TestSleepAsked(t *testing.T) {
	t.Parallel()
	d, ok := sleepAsked([]byte(`{"ms":100}`))
	assert.True(t, ok)
	assert.Equal(t, 100*time.Millisecond, d)
	for _, bad := range []string{``, `{}`, `{"ms":-1}`, `{"ms":1.5}`, `x`} {
		_, ok := sleepAsked([]byte(bad))
		assert.False(t, ok, bad)
	}
}
