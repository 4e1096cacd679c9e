package client_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
)

// Every era of the table has its compiled-in schema: the function manager
// of the era calls /<its proto package>.Function/Call.
func TestForProfileFollowsTheEraTable(t *testing.T) {
	for _, p := range convention.Profiles {
		info := p.Info()
		assert.Equal(t, string(p), info.Name)
		assert.Equal(t, "/"+info.ProtoPackage+".Function/Call", client.ForProfile(p).FullMethod(), "profile %s", p)
		assert.NotEmpty(t, info.ConfigPath, "profile %s", p)
	}
	assert.Equal(t, "/openedge.Function/Call", client.ForProfile("").FullMethod(), "no profile: the default era")
}
